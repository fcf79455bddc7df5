"""Fuzz tests: whatever the markers' case, spacing, order, nesting or interleaving, no secret reaches a
student version; what cannot be paired is refused, naming the notebook and the cell.

Each generated notebook hides the word SECRET wherever a solution, a hidden test, a solution
explanation or a rubric sits, and asserts that coursekit.homework.student_version either refuses it
(MarkerError naming notebook and cell) or returns a notebook whose JSON does not contain SECRET.
Generated cases (hypothesis, derandomized): 400 cells of nbgrader markers (well-formed ones must
convert and keep every public line), 200 notebooks of MyST solution gates and fences,
200 marker lines of random spelling (each must be recognised).
"""
from __future__ import annotations

import re

import nbformat
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from coursekit.homework import student_version
from coursekit.markers import MarkerError, marker_lines

NAME = "fuzz/chapter.ipynb"
SETTINGS = dict(deadline=None, derandomize=True, database=None, suppress_health_check=[HealthCheck.too_slow])
WORDS = {"solution": ("BEGIN SOLUTION", "END SOLUTION"), "hidden": ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS")}


@st.composite
def spelled(draw, which: str, kind: str) -> str:
    """One marker line: random case, separators, '#' count, indentation, TEST/TESTS, a trailing comment."""
    words = WORDS[kind][0 if which == "begin" else 1].split()
    if kind == "hidden" and draw(st.booleans()):
        words[-1] = "TEST"
    seps = [draw(st.sampled_from([" ", "  ", "   ", "_", "-", "\t"])) for _ in words[1:]]
    text = words[0] + "".join(s + w for s, w in zip(seps, words[1:]))
    text = "".join(c.lower() if draw(st.booleans()) else c for c in text) if draw(st.booleans()) else text
    hashes = "#" * draw(st.integers(0, 4)) + draw(st.sampled_from(["", " ", "  "]))
    indent = draw(st.sampled_from(["", "    ", "\t", "  "]))
    tail = draw(st.sampled_from(["", "  ", "  # marker"]))
    return indent + hashes + text + tail


@st.composite
def marker_cells(draw) -> tuple[list[str], bool]:
    """Lines of one cell: public lines and regions holding SECRET lines, then maybe a mutation.

    Returns (lines, mutated). A well-formed cell (mutated False) must convert and keep its public lines.
    """
    items: list[tuple[str, object]] = []  # ("public", text) / ("secret", text) / ("marker", (which, kind))
    for r in range(draw(st.integers(1, 3))):
        items.append(("public", f"public_{r} = {r}"))
        kind = draw(st.sampled_from(["solution", "hidden"]))
        items.append(("marker", ("begin", kind)))
        for k in range(draw(st.integers(1, 2))):
            items.append(("secret", f"    value_{r}_{k} = 'SECRET {kind}'"))
        items.append(("marker", ("end", kind)))
    items.append(("public", "print('after')"))
    mutation = draw(st.sampled_from(["none", "none", "swap", "delete", "duplicate", "nest", "flip"]))
    markers = [i for i, (t, _) in enumerate(items) if t == "marker"]
    if mutation == "swap":
        a, b = draw(st.sampled_from([(a, b) for a in markers for b in markers if a < b]))
        items[a], items[b] = items[b], items[a]
    elif mutation == "delete":
        items.pop(draw(st.sampled_from(markers)))
    elif mutation == "duplicate":
        i = draw(st.sampled_from(markers))
        items.insert(draw(st.integers(0, len(items))), items[i])
    elif mutation == "nest":  # a whole region of another (or the same) kind inside a region
        i = draw(st.sampled_from([m for m in markers if items[m][1][0] == "begin"]))
        kind = draw(st.sampled_from(["solution", "hidden"]))
        items[i + 1:i + 1] = [("marker", ("begin", kind)), ("secret", "    nested = 'SECRET'"),
                              ("marker", ("end", kind))]
    elif mutation == "flip":  # a BEGIN written as END or the other way round
        i = draw(st.sampled_from(markers))
        which, kind = items[i][1]
        items[i] = ("marker", ("end" if which == "begin" else "begin", kind))
    lines = [draw(spelled(*v)) if t == "marker" else v for t, v in items]
    return lines, mutation != "none"


def graded_cell(source: str, grade_id: str) -> nbformat.NotebookNode:
    cell = new_code_cell(source)
    cell.metadata["nbgrader"] = {"schema_version": 3, "grade_id": grade_id, "solution": True,
                                 "grade": True, "locked": False, "points": 1}
    cell.metadata["funml"] = {"rubric": "SECRET rubric: full points for the closed form"}
    return cell


def assert_refused_or_clean(nb: nbformat.NotebookNode) -> tuple[nbformat.NotebookNode, dict] | None:
    try:
        student, stats = student_version(nb, name=NAME)
    except MarkerError as err:
        assert re.search(rf"^{re.escape(NAME)}, cell \d+", str(err)), str(err)
        return None
    assert "SECRET" not in nbformat.writes(student)
    return student, stats


@settings(max_examples=400, **SETTINGS)
@given(cell=marker_cells(), graded=st.booleans())
def test_no_arrangement_of_nbgrader_markers_leaks(cell, graded):
    lines, mutated = cell
    source = "\n".join(lines)
    nb = new_notebook(cells=[new_code_cell("import math"),
                             graded_cell(source, "ex-1-answer") if graded else new_code_cell(source)])
    result = assert_refused_or_clean(nb)
    if not mutated:  # well-formed: converted, and every public line is still there
        assert result is not None, "a well-formed cell was refused"
        student, stats = result
        if graded and not stats["regions"]:  # nbgrader stubs an answer cell without a region whole
            assert student.cells[1].source == "# YOUR CODE HERE\nraise NotImplementedError()"
            return
        for line in lines:
            if line.startswith(("public_", "print(")):
                assert line in student.cells[1].source


gate_spellings = st.sampled_from(["solution-start", "Solution-Start", "SOLUTION_START", "solution start",
                                  " solution-start ", "solutionstart"])
end_spellings = st.sampled_from(["solution-end", "Solution-End", "SOLUTION_END", "solution end", "solutionend"])
fences = st.sampled_from(["```", "````", ":::", "::::"])


@st.composite
def gated_notebooks(draw) -> tuple[nbformat.NotebookNode, bool]:
    """Public text, an exercise, gates around SECRET markdown and code (maybe broken), a MyST fence."""
    f1, f2 = draw(fences), draw(fences)
    start = f"{f1}{{{draw(gate_spellings)}}} ex-1\n:class: dropdown\n{f1}"
    end = f"{f2}{{{draw(end_spellings)}}}\n{f2}"
    inner = draw(st.sampled_from(["SECRET explanation", "```python\nx = 'SECRET'\n```",
                                  "Text with SECRET $x$"]))
    body = [new_markdown_cell(inner), new_code_cell("answer = 'SECRET gated code'")]
    cells = [new_markdown_cell("Public intro."), new_markdown_cell(start), *body, new_markdown_cell(end),
             new_markdown_cell("Public after.")]
    mutation = draw(st.sampled_from(["none", "none", "drop start", "drop end", "swap", "twice"]))
    if mutation == "drop start":
        cells.pop(1)
    elif mutation == "drop end":
        cells.pop(4)
    elif mutation == "swap":
        cells[1], cells[4] = cells[4], cells[1]
    elif mutation == "twice":
        cells.insert(3, new_markdown_cell(start))
    fence = draw(st.sampled_from(["```", "````", ":::"]))
    name = draw(st.sampled_from(["solution", "Solution", "SOLUTION", " solution "]))
    cells.append(new_markdown_cell(f"Public before the fence.\n{fence}{{{name}}} ex-2\n:class: dropdown\n"
                                   f"The SECRET answer.\n{fence}\nPublic after the fence."))
    return new_notebook(cells=cells), mutation != "none"


@settings(max_examples=200, **SETTINGS)
@given(case=gated_notebooks())
def test_no_arrangement_of_solution_gates_or_fences_leaks(case):
    nb, mutated = case
    result = assert_refused_or_clean(nb)
    if not mutated:
        assert result is not None, "well-formed gates were refused"
        text = nbformat.writes(result[0])
        assert "Public intro." in text and "Public after." in text and "Public after the fence." in text


@settings(max_examples=200, **SETTINGS)
@given(data=st.data(), which=st.sampled_from(["begin", "end"]), kind=st.sampled_from(["solution", "hidden"]))
def test_every_spelling_of_a_marker_is_recognised(data, which, kind):
    line = data.draw(spelled(which, kind))
    assert marker_lines("x = 1\n" + line) == [(2, which, kind)]


@pytest.mark.parametrize("source, message", [
    ("### BEGIN SOLUTION\n### BEGIN HIDDEN TESTS\nSECRET\n### END SOLUTION\n### END HIDDEN TESTS",
     "cell 0: 'BEGIN HIDDEN TESTS' on line 2 inside the 'BEGIN SOLUTION' region opened on line 1 "
     "(regions may not overlap: close it with 'END SOLUTION' first)"),
    ("### begin solution\nSECRET\n### END HIDDEN TESTS",
     "cell 0: 'END HIDDEN TESTS' on line 3 closes a region that is not open: the 'BEGIN SOLUTION' region "
     "opened on line 1 must end with 'END SOLUTION' first (interleaved regions are not allowed)"),
    ("x = 1  ### BEGIN SOLUTION ### END SOLUTION", "cell 0: line 1 holds two markers"),
    ("SECRET\n# end solution", "cell 0: 'END SOLUTION' on line 2 without a 'BEGIN SOLUTION' before it"),
])
def test_the_issue_cases_are_refused_with_exact_messages(source, message):
    with pytest.raises(MarkerError) as err:
        student_version(new_notebook(cells=[new_code_cell(source)]), name=NAME)
    assert str(err.value).startswith(f"{NAME}, {message}")


def test_lower_case_markers_are_cleared_like_nbgrader_s_own():
    nb = new_notebook(cells=[new_code_cell("def f(x):\n    ### begin   solution\n    return 'SECRET'\n"
                                           "    ### end solution\n\nprint(f)")])
    student, stats = student_version(nb, name=NAME)
    assert student.cells[0].source == ("def f(x):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n\n"
                                       "print(f)")
    assert stats["regions"] == 1
