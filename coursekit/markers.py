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
# Any spelling of nbgrader's four markers: any case, any run of spaces, '_' or '-' between the words,
# "TEST" or "TESTS", anywhere in a line. nbgrader itself matches only the exact upper-case words, so a
# line matched here but not spelled canonically would reach students; normalize_markers rewrites it.
MARKER = re.compile(r"(?<![A-Za-z])(?P<end>begin|end)[\s_-]*(?P<kind>solutions?|hidden(?:[\s_-]*tests?)?)"
                    r"(?![A-Za-z])", re.IGNORECASE)
CANONICAL = {("begin", "solution"): f"### {BEGIN}", ("end", "solution"): f"### {END}",
             ("begin", "hidden"): f"### {BEGIN_HIDDEN}", ("end", "hidden"): f"### {END_HIDDEN}"}
# opening line of a MyST directive fence: ```{solution} / ::::{solution-start} ..., any indentation,
# any case and spaces or '_' inside the braces (MyST would not render a misspelt one: it must not leak)
SOLUTION_FENCE = re.compile(r"^\s*(?P<fence>`{3,}|:{3,})\s*\{\s*(?P<name>solution(?:[\s_-]*(?:start|end))?)\s*\}",
                            re.IGNORECASE)
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
    """Whether `source` holds a BEGIN/END SOLUTION marker in any spelling."""
    return any(kind == "solution" for _, _, kind in marker_lines(source))


def has_hidden_tests(source: str) -> bool:
    """Whether `source` holds a BEGIN/END HIDDEN TESTS marker in any spelling."""
    return any(kind == "hidden" for _, _, kind in marker_lines(source))


def marker_lines(source: str) -> list[tuple[int, str, str]]:
    """(line number from 1, 'begin' or 'end', 'solution' or 'hidden') for each marker line of `source`.

    A line with two markers is reported twice (check_markers refuses it).
    """
    found = []
    for n, line in enumerate(source.split("\n"), start=1):
        for m in MARKER.finditer(line):
            kind = "solution" if m.group("kind").lower().startswith("solution") else "hidden"
            found.append((n, m.group("end").lower(), kind))
    return found


def _gate_name(raw: str) -> str:
    """'solution', 'solution-start' or 'solution-end' for any spelling SOLUTION_FENCE accepts."""
    m = re.fullmatch(r"solution[\s_-]*(start|end)?", raw.strip().lower())
    return "solution" + (f"-{m.group(1)}" if m and m.group(1) else "")


def solution_gates(source: str) -> list[str]:
    """Names of the gated solution markers ('solution-start' / 'solution-end') opening lines of source.

    Spelling is normalized: {Solution_Start} and { solution - end } count as gates too.
    """
    names = [_gate_name(m.group("name")) for m in map(SOLUTION_FENCE.match, source.split("\n")) if m]
    return [n for n in names if n != "solution"]


def _check_cell_markers(source: str, where: str) -> None:
    """Raise MarkerError unless the cell's markers form separate BEGIN/END pairs of one kind each."""
    words = {"solution": (BEGIN, END), "hidden": (BEGIN_HIDDEN, END_HIDDEN)}
    opened: tuple[int, str] | None = None
    seen: dict[int, int] = {}
    for n, which, kind in marker_lines(source):
        seen[n] = seen.get(n, 0) + 1
        if seen[n] > 1:
            raise MarkerError(f"{where}: line {n} holds two markers; put each BEGIN/END marker on its own line")
        begin, end = words[kind]
        if which == "begin":
            if opened is not None:
                if opened[1] == kind:
                    raise MarkerError(f"{where}: '{begin}' on line {n} inside the region opened on line "
                                      f"{opened[0]} (nested regions are not allowed)")
                raise MarkerError(f"{where}: '{begin}' on line {n} inside the '{words[opened[1]][0]}' region "
                                  f"opened on line {opened[0]} (regions may not overlap: close it with "
                                  f"'{words[opened[1]][1]}' first)")
            opened = (n, kind)
        elif opened is None:
            raise MarkerError(f"{where}: '{end}' on line {n} without a '{begin}' before it; "
                              "the code above it would reach the student version")
        elif opened[1] != kind:
            raise MarkerError(f"{where}: '{end}' on line {n} closes a region that is not open: the "
                              f"'{words[opened[1]][0]}' region opened on line {opened[0]} must end with "
                              f"'{words[opened[1]][1]}' first (interleaved regions are not allowed)")
        else:
            opened = None
    if opened is not None:
        begin, end = words[opened[1]]
        raise MarkerError(f"{where}: '{begin}' on line {opened[0]} has no '{end}'")


def normalize_markers(nb: NotebookNode, name: str = "notebook") -> int:
    """Rewrite every marker line of `nb` (in place) as nbgrader's exact marker; return how many changed.

    Checks them first (check_markers), so what nbgrader's ClearSolutions / ClearHiddenTests then see is
    pairs they recognise: a lower-case or oddly spaced marker would otherwise pass through them. The
    marker line keeps its indentation (nbgrader indents the stub like it); anything else on the line
    goes, as nbgrader drops a marker line whole.
    """
    check_markers(nb, name)
    changed = 0
    for cell in nb.cells:
        lines = cell.source.split("\n")
        for n, which, kind in marker_lines(cell.source):
            line = lines[n - 1]
            canonical = line[:len(line) - len(line.lstrip())] + CANONICAL[(which, kind)]
            if line != canonical:
                lines[n - 1] = canonical
                changed += 1
        cell.source = "\n".join(lines)
    return changed


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

    BEGIN/END SOLUTION and BEGIN/END HIDDEN TESTS (any spelling, see MARKER) must pair up inside each
    cell, in order, one marker a line, neither nested nor interleaved;
    gated {solution-start}/{solution-end} and {exercise-start}/{exercise-end} cells must pair up. In a
    notebook with nbgrader metadata a solution region must sit in a solution cell and hidden tests in
    a grade cell, as nbgrader requires.
    """
    graded = any(nbgrader_metadata(c) for c in nb.cells)
    for i, cell in enumerate(nb.cells):
        where = f"{name}, cell {i}"
        _check_cell_markers(cell.source, where)
        meta = nbgrader_metadata(cell)
        if graded and has_solution_markers(cell.source) and not meta.get("solution"):
            raise MarkerError(f"{where}: a BEGIN/END SOLUTION region in a cell without nbgrader "
                              "metadata \"solution\": true (nbgrader refuses it)")
        if graded and has_hidden_tests(cell.source) and not meta.get("grade"):
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
