"""The book's exercise and solution markers (spec section 7): find them, check they pair up, convert them.

Shared by the student versions (coursekit.homework) and the nbgrader course (coursekit.course). Every
error is a NotebookError that names the notebook and the cell.
"""
from __future__ import annotations

import re

from nbformat import NotebookNode

from coursekit.safe_io import NotebookError

SOLUTION_TAG = "solution"
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
TEXT_STUB = "YOUR ANSWER HERE"
BEGIN, END = "BEGIN SOLUTION", "END SOLUTION"
BEGIN_HIDDEN, END_HIDDEN = "BEGIN HIDDEN TESTS", "END HIDDEN TESTS"
# opening line of a MyST directive fence: ```{solution} / ::::{solution-start} ..., any indentation
SOLUTION_FENCE = re.compile(r"^\s*(?P<fence>`{3,}|:{3,})\{(?P<name>solution(?:-start|-end)?)\}")
EXERCISE_FENCE = re.compile(r"^\s*(?P<fence>`{3,}|:{3,})\{(?P<name>exercise(?:-start|-end)?)\}(?P<title>.*)$")

MarkerError = NotebookError  # one error class for every problem; the message names notebook and cell


def strip_solution_directives(markdown: str) -> tuple[str, int]:
    """Remove MyST solution blocks from markdown text; return (text, number of blocks removed).

    A block runs from its opening fence to the first closing fence of the same character and at
    least the same length (so a ```python fence nested in a ````{solution} stays inside it); an
    unclosed block runs to the end of the text, as in MyST.
    """
    lines, kept, removed, i = markdown.split("\n"), [], 0, 0
    while i < len(lines):
        m = SOLUTION_FENCE.match(lines[i])
        if not m:
            kept.append(lines[i])
            i += 1
            continue
        fence = m.group("fence")
        closing = re.compile(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        i += 1
        while i < len(lines) and not closing.match(lines[i]):
            i += 1
        i += 1  # skip the closing fence itself
        removed += 1
    return "\n".join(kept), removed


def cell_tags(cell: NotebookNode) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def nbgrader_metadata(cell: NotebookNode) -> dict:
    meta = cell.get("metadata", {}).get("nbgrader")
    return meta if isinstance(meta, dict) else {}


def has_solution_markers(source: str) -> bool:
    return BEGIN in source or END in source


def solution_gates(source: str) -> list[str]:
    """Names of the gated solution markers ('solution-start' / 'solution-end') opening lines of source."""
    return [m.group("name") for m in map(SOLUTION_FENCE.match, source.split("\n")) if m and m.group("name") != "solution"]


def replace_exercise_markers(markdown: str, count: int) -> tuple[str, int]:
    """MyST exercise directives -> plain Markdown: return (text, exercises counted so far).

    An `{exercise-start}` block (fence to closing fence, options included) becomes the heading
    "### Exercise N[: title]" and an `{exercise-end}` block disappears; a classic `{exercise}` block
    becomes the same heading followed by its body (options such as `:label:` dropped). Jupyter and
    Colab then show the statement, and its $math$, as ordinary Markdown instead of a code block.
    """
    lines, kept, i = markdown.split("\n"), [], 0
    while i < len(lines):
        m = EXERCISE_FENCE.match(lines[i])
        if not m:
            kept.append(lines[i])
            i += 1
            continue
        fence, name, title = m.group("fence"), m.group("name"), m.group("title").strip()
        closing = re.compile(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        if name != "exercise-end":
            count += 1
            kept.append(f"### Exercise {count}" + (f": {title}" if title else ""))
        i += 1
        while i < len(lines) and re.match(r"^\s*:[\w-]+:", lines[i]):  # directive options
            i += 1
        while i < len(lines) and not closing.match(lines[i]):
            if name == "exercise":
                kept.append(lines[i])
            i += 1
        i += 1
    return "\n".join(kept).strip("\n"), count


def check_markers(nb: NotebookNode, name: str = "notebook") -> None:
    """Raise HomeworkError (naming `name` and the cell) for markers that would leak or lose material.

    BEGIN/END SOLUTION and BEGIN/END HIDDEN TESTS must pair up inside each cell, in order, unnested;
    gated {solution-start}/{solution-end} and {exercise-start}/{exercise-end} cells must pair up. In a
    notebook with nbgrader metadata a solution region must sit in a solution cell and hidden tests in
    a grade cell, as nbgrader requires.
    """
    graded = any(nbgrader_metadata(c) for c in nb.cells)
    for i, cell in enumerate(nb.cells):
        where = f"{name}, cell {i}"
        for begin, end in ((BEGIN, END), (BEGIN_HIDDEN, END_HIDDEN)):
            inside = None
            for n, line in enumerate(cell.source.split("\n"), start=1):
                if begin in line:
                    if inside:
                        raise MarkerError(f"{where}: '{begin}' on line {n} inside the region opened on "
                                            f"line {inside} (nested regions are not allowed)")
                    inside = n
                elif end in line:
                    if not inside:
                        raise MarkerError(f"{where}: '{end}' on line {n} without a '{begin}' before it; "
                                            "the code above it would reach the student version")
                    inside = None
            if inside:
                raise MarkerError(f"{where}: '{begin}' on line {inside} has no '{end}'")
        meta = nbgrader_metadata(cell)
        if graded and BEGIN in cell.source and not meta.get("solution"):
            raise MarkerError(f"{where}: a BEGIN/END SOLUTION region in a cell without nbgrader "
                                "metadata \"solution\": true (nbgrader refuses it)")
        if graded and BEGIN_HIDDEN in cell.source and not meta.get("grade"):
            raise MarkerError(f"{where}: hidden tests in a cell that is not an nbgrader grade cell")
    for kind in ("solution", "exercise"):
        opened = None
        for i, cell in enumerate(nb.cells):
            if cell.cell_type != "markdown":
                continue
            names = solution_gates(cell.source) if kind == "solution" else \
                [m.group("name") for m in map(EXERCISE_FENCE.match, cell.source.split("\n"))
                 if m and m.group("name") != "exercise"]
            for gate in names:
                if gate.endswith("-start"):
                    if opened is not None:
                        raise MarkerError(f"{name}, cell {i}: {{{gate}}} before the {{{kind}-start}} of "
                                            f"cell {opened} is closed by a {{{kind}-end}}")
                    opened = i
                else:
                    if opened is None:
                        raise MarkerError(f"{name}, cell {i}: {{{gate}}} without a {{{kind}-start}} "
                                            "before it")
                    opened = None
        if opened is not None:
            raise MarkerError(f"{name}, cell {opened}: {{{kind}-start}} has no {{{kind}-end}}")
