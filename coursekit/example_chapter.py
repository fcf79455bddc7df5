"""A minimal chapter with the book's exercise layout (spec section 7): the pattern to copy, and a test fixture.

    python -m coursekit.example_chapter example.ipynb     # write it, to open in Jupyter

It has one prose exercise (ex-demo-1, graded by hand, 1 point), one function exercise (ex-demo-2:
write `kl_divergence`, 3 points) and one number exercise (ex-demo-3: predict a KL value, 2 points),
the last two graded automatically by coursekit.grading, each laid out as the chapters do:

    {exercise-start} marker | statement (ordinary Markdown) | {exercise-end} marker
    {solution-start} marker [tag solution] | answer cell [nbgrader] | explanation [tag solution]
    {solution-end} marker [tag solution] | (automatic exercises) tests cell [nbgrader, locked]

A tests cell holds only the visible self-check and a comment: the grader checks the answer in a
separate process (probes in coursekit/grading/functions.py; number references in NUMBERS below,
which stand in for a chapter's coursekit/grading/answers/chNN.py).
"""
from __future__ import annotations

import math
import sys

import nbformat
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from coursekit.colab import SETUP_CELL


def nbgrader_meta(grade_id: str, *, grade: bool, solution: bool, locked: bool, points: int = 0) -> dict:
    """The `cell.metadata.nbgrader` of spec section 7 (schema 3); points only for graded cells."""
    meta = {"grade": grade, "grade_id": grade_id, "locked": locked, "schema_version": 3, "solution": solution}
    if grade:
        meta["points"] = points
    return meta


def _md(source: str, tags: list[str] | None = None, nbgrader: dict | None = None):
    cell = new_markdown_cell(source)
    if tags:
        cell.metadata["tags"] = tags
    if nbgrader:
        cell.metadata["nbgrader"] = nbgrader
    return cell


def _code(source: str, tags: list[str] | None = None, nbgrader: dict | None = None):
    cell = new_code_cell(source)
    if tags:
        cell.metadata["tags"] = tags
    if nbgrader:
        cell.metadata["nbgrader"] = nbgrader
    return cell


PROSE_ANSWER = ("Both units have mean activation 0.05, equal to rho, so the KL penalty is 0 for "
                "both: it sees only the mean.")
KL_ANSWER = '''\
def kl_divergence(rho, rho_hat):
    """Bernoulli KL(rho || rho_hat) per unit, same shape as rho_hat."""
    ### BEGIN SOLUTION
    rho_hat = rho_hat.clamp(1e-6, 1 - 1e-6)
    return (rho * torch.log(rho / rho_hat)
            + (1 - rho) * torch.log((1 - rho) / (1 - rho_hat)))
    ### END SOLUTION'''
KL_TESTS = '''\
from funml_lib.self_checks import check_kl_sparsity

check_kl_sparsity(kl_divergence)
# The course grader checks kl_divergence further, in a separate process.'''
NUMBER_ANSWER = '''\
### BEGIN SOLUTION
kl_value = 0.05 * math.log(0.05 / 0.2) + 0.95 * math.log(0.95 / 0.8)
### END SOLUTION'''
NUMBER_TESTS = '''\
from funml_lib.self_checks import check_numbers

check_numbers(kl_value=kl_value)
# The course grader checks this value again, in a separate process.'''
# tests grade_id -> {name: (reference, absolute tolerance)}: the example's answers table
NUMBERS = {"ex-demo-3-tests": {
    "kl_value": (0.05 * math.log(0.05 / 0.2) + 0.95 * math.log(0.95 / 0.8), 1e-3)}}


def example_chapter() -> nbformat.NotebookNode:
    """The example chapter as a clean notebook (no outputs)."""
    label1, label2, label3 = "ex-demo-1", "ex-demo-2", "ex-demo-3"
    nb = new_notebook(cells=[
        _code(SETUP_CELL, tags=["setup", "remove-cell"]),
        _md("# An example chapter\n\nTwo exercises in the book's layout."),
        _code("# Parameters: papermill (and you) may change these.\nrho = 0.05\nseed = 0",
              tags=["parameters"]),
        _code("from funml_lib import check_parameters, grading_run\n\n"
              "check_parameters(rho=rho, seed=seed)\n"
              "if grading_run():      # nbgrader's autograde sets FUNML_GRADING=1: keep it quick\n"
              "    pass"),
        _code("import math\n\nimport torch\n\nfrom funml_lib import kl_sparsity, seed_everything\n\n"
              "seed_everything(seed)\nkl = float(kl_sparsity(rho, torch.tensor(0.2)))\nprint(f\"KL({rho} || 0.2) = {kl:.4f}\")"),
        _md(f"```{{exercise-start}}\n:label: {label1}\n```"),
        _md("A unit is on ($z = 1$) for 5 % of the digits, a second one has $z = 0.05$ on every "
            "digit. What is the KL penalty of each with $\\rho = 0.05$?"),
        _md("```{exercise-end}\n```"),
        _md(f"```{{solution-start}} {label1}\n:class: dropdown\n```", tags=["solution"]),
        _md(PROSE_ANSWER, nbgrader=nbgrader_meta(f"{label1}-answer", grade=True, solution=True,
                                                 locked=False, points=1)),
        _md("```{solution-end}\n```", tags=["solution"]),
        _md(f"```{{exercise-start}}\n:label: {label2}\n```"),
        _md("Write `kl_divergence(rho, rho_hat)`: the Bernoulli KL divergence\n"
            "$\\mathrm{KL}(\\rho \\,\\|\\, \\hat\\rho_j)$ for every entry of the tensor `rho_hat`, in nats.\n"
            "Use torch operations only."),
        _md("```{exercise-end}\n```"),
        _md(f"```{{solution-start}} {label2}\n:class: dropdown\n```", tags=["solution"]),
        _code(KL_ANSWER, nbgrader=nbgrader_meta(f"{label2}-answer", grade=False, solution=True, locked=False)),
        _md("Clamping keeps both logarithms finite for units that are never or always on.",
            tags=["solution"]),
        _md("```{solution-end}\n```", tags=["solution"]),
        _code(KL_TESTS, tags=["hide-input"],
              nbgrader=nbgrader_meta(f"{label2}-tests", grade=True, solution=False, locked=True, points=3)),
        _md(f"```{{exercise-start}}\n:label: {label3}\n```"),
        _md("Predict, then check: what is $\\mathrm{KL}(0.05 \\,\\|\\, 0.2)$ in nats? Assign it to "
            "`kl_value` (a number, or arithmetic with `math`); the cell above printed it."),
        _md("```{exercise-end}\n```"),
        _md(f"```{{solution-start}} {label3}\n:class: dropdown\n```", tags=["solution"]),
        _code(NUMBER_ANSWER, nbgrader=nbgrader_meta(f"{label3}-answer", grade=False, solution=True,
                                                    locked=False)),
        _md("```{solution-end}\n```", tags=["solution"]),
        _code(NUMBER_TESTS, tags=["hide-input"],
              nbgrader=nbgrader_meta(f"{label3}-tests", grade=True, solution=False, locked=True, points=2)),
        _md("That is the whole chapter."),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["language_info"] = {"name": "python"}
    nb.metadata["funml"] = {"test_parameters": {"rho": 0.1}}
    return nb


if __name__ == "__main__":
    if len(sys.argv) != 2:
        raise SystemExit("usage: python -m coursekit.example_chapter OUT.ipynb")
    from coursekit.safe_io import atomic_write_text

    atomic_write_text(sys.argv[1], nbformat.writes(example_chapter()) + "\n")
