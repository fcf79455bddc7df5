"""Student versions of the chapters: solutions out, stubs in, outputs cleared.

    python -m coursekit.homework book homework      # what `make homework` runs

The chapters follow the exercise layout of the book's conventions (spec section 7): statement between
gated `{exercise-start}`/`{exercise-end}` markers, then the answer between gated `{solution-start}`/
`{solution-end}` markers, then (code exercises) a locked autograder-tests cell. A student version is
what `nbgrader generate_assignment` releases:

- cells with nbgrader metadata are left to nbgrader's ClearSolutions: a prose answer becomes
  "YOUR ANSWER HERE", the code between `### BEGIN SOLUTION` and `### END SOLUTION` becomes
  `# YOUR CODE HERE` + `raise NotImplementedError()`; an autograder-tests cell keeps its visible part
  and loses its `BEGIN/END HIDDEN TESTS` region (ClearHiddenTests). Such a cell is never stubbed;
- the gated solution marker cells and markdown between them without nbgrader metadata (the
  explanation of the solution, tagged "solution") are removed, as are MyST `{solution}` blocks;
- the `{exercise-start}` marker becomes a plain Markdown heading "Exercise N" (N counts the exercises
  of the notebook) and `{exercise-end}` goes; a classic `{exercise}` block becomes the same heading
  and its body, so Jupyter and Colab show statements as Markdown, never as directive source;
- all outputs, execution counts and saved widget state are cleared, and so are hand-grading rubrics
  (cell metadata funml.rubric: feedback for the instructor's grading, not part of the exercise);
- markers are found in any spelling (case, spaces, '_' or '-', TEST/TESTS; gates like {Solution_Start})
  and rewritten as nbgrader's exact markers first; markers that do not pair up in one cell (nested,
  interleaved, unclosed, two on a line) are refused, naming the notebook, the cell and the line.
Older chapters without nbgrader metadata still work: a code cell tagged "solution" or inside the gates
without BEGIN/END markers becomes the stub as a whole. Chapters come from _toc.yml (in SRC_DIR or its
parent), else every *.ipynb in SRC_DIR. Every error names the notebook and the cell; nothing is written
unless every chapter converts, and the output folder may not be, contain or lie inside SRC_DIR.
"""
from __future__ import annotations

import argparse
import copy
import re
import sys
from pathlib import Path

import nbformat
from nbconvert.preprocessors import ClearOutputPreprocessor, Preprocessor
from nbformat import NotebookNode
from traitlets import Bool

from coursekit.markers import (  # noqa: F401  (strip_solution_directives, check_markers: re-exported)
    BEGIN, BEGIN_HIDDEN, CODE_STUB, EXERCISE_FENCE, MARKER, SOLUTION_FENCE, SOLUTION_TAG, TEXT_STUB,
    MarkerError, cell_tags, check_markers, has_solution_markers, marker_lines, nbgrader_metadata,
    normalize_markers, replace_exercise_markers, solution_gates, strip_solution_directives)
from coursekit.safe_io import NotebookError, atomic_write_text, check_output_dir, make_dirs, read_notebook
from coursekit.toc import chapter_notebooks

CLAIMS_TAG = "claims"  # hidden cells that assert the text's results (funml_lib.claim)
HomeworkError = MarkerError  # one error class for every problem; the message names notebook and cell


def _drop_rubric(cell: NotebookNode) -> None:
    """Remove the hand-grading rubric (cell metadata funml.rubric): it is for feedback, not for students."""
    funml = cell.get("metadata", {}).get("funml")
    if isinstance(funml, dict) and "rubric" in funml:
        funml.pop("rubric")
        if not funml:
            cell.metadata.pop("funml")


def _drop_solution_tag(cell: NotebookNode) -> None:
    tags = [t for t in cell_tags(cell) if t != SOLUTION_TAG]
    if tags:
        cell.metadata["tags"] = tags
    else:
        cell.metadata.pop("tags", None)


class RemoveSolutionText(Preprocessor):
    """nbconvert/nbgrader preprocessor: drop the book's solution text and markers, keep nbgrader's cells.

    Cells with nbgrader metadata pass untouched (nbgrader's ClearSolutions and ClearHiddenTests handle
    them, and an autograder-tests cell is never stubbed); solution markdown without metadata goes;
    exercise markers become a heading; legacy solution code cells without markers become the stub.
    """

    enabled = Bool(True, help="on by default, so nbgrader and nbconvert run it once registered").tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        cells, inside, exercises = [], False, 0
        stats = resources.setdefault("homework", {"text_removed": 0, "cells_stubbed": 0})
        # first: every marker checked and spelled as nbgrader's ClearSolutions/ClearHiddenTests expect,
        # so a lower-case or oddly spaced marker is cleared like the others, never shipped
        normalize_markers(nb, resources.get("funml_name") or resources.get("unique_key") or "notebook")
        for cell in nb.cells:
            _drop_rubric(cell)
            tags, graded = cell_tags(cell), bool(nbgrader_metadata(cell))
            if CLAIMS_TAG in tags and not graded:
                # the hidden claims cells state results the exercises ask students to predict
                # (closed forms, rankings): they are the book's self-test, not the student's
                stats["claims_removed"] = stats.get("claims_removed", 0) + 1
                continue
            if graded:  # an answer or an autograder-tests cell: nbgrader's business
                _drop_solution_tag(cell)
                cells.append(cell)
                continue
            if cell.cell_type == "markdown":
                if any(EXERCISE_FENCE.match(line) for line in cell.source.split("\n")):
                    text, exercises = replace_exercise_markers(cell.source, exercises)
                    if not text.strip():
                        continue
                    cell.source = text
                was_inside = inside
                for gate in solution_gates(cell.source):
                    inside = gate == "solution-start"
                text, n = strip_solution_directives(cell.source)
                if SOLUTION_TAG in tags or (was_inside and n == 0):
                    stats["text_removed"] += 1  # solution text, or text between the gates
                    continue
                stats["text_removed"] += n
                if not text.strip():
                    continue
                cell.source = text
            elif cell.cell_type == "code" and (SOLUTION_TAG in tags or inside):
                if not has_solution_markers(cell.source):  # an older chapter: a whole solution cell
                    cell.source = CODE_STUB
                    stats["cells_stubbed"] += 1
                _drop_solution_tag(cell)
            cells.append(cell)
        nb.cells = cells
        return nb, resources


def _nbgrader_preprocessors() -> tuple[Preprocessor, Preprocessor]:
    try:
        from nbgrader.preprocessors import ClearHiddenTests, ClearSolutions
    except ImportError as err:  # nbgrader is the optional extra "homework"
        raise ImportError("student versions need nbgrader: pip install -e '.[homework]'") from err
    # enforce_metadata=False only for older chapters without nbgrader metadata; check_markers already
    # enforces nbgrader's rule in every chapter that has it, and `nbgrader generate_assignment` enforces it.
    return (ClearSolutions(enforce_metadata=False, code_stub={"python": CODE_STUB}, text_stub=TEXT_STUB),
            ClearHiddenTests(enforce_metadata=False))


def nbgrader_preprocessors() -> list[type]:
    """nbgrader's generate_assignment preprocessors with RemoveSolutionText first (for nbgrader_config.py).

    nbgrader alone clears only BEGIN/END SOLUTION regions and solution cells; this also drops the book's
    solution text and gated marker cells and turns exercise markers into headings, as `make homework` does.
    """
    from nbgrader.converters import GenerateAssignment

    return [RemoveSolutionText, *GenerateAssignment.class_traits()["preprocessors"].default()]


def student_version(nb: NotebookNode, name: str = "notebook") -> tuple[NotebookNode, dict]:
    """Return (student notebook, stats) for a chapter notebook; the input is not modified.

    name: how errors refer to the notebook (its path). stats: {"text_removed": markdown solutions
    removed, "cells_stubbed": whole legacy cells replaced, "regions": BEGIN/END SOLUTION regions
    replaced, "answers": nbgrader answer cells, "hidden_tests": hidden test regions removed}.
    """
    if not isinstance(nb, NotebookNode):
        raise TypeError(f"nb must be a notebook (nbformat.NotebookNode), got {type(nb).__name__}")
    nb = copy.deepcopy(nb)
    check_markers(nb, name)
    marks = [m for c in nb.cells for m in marker_lines(c.source) if m[1] == "begin"]
    regions = sum(kind == "solution" for _, _, kind in marks)
    hidden = sum(kind == "hidden" for _, _, kind in marks)
    answers = sum(1 for c in nb.cells if nbgrader_metadata(c).get("solution"))
    resources: dict = {"funml_name": name}
    try:
        for pre in (RemoveSolutionText(), *_nbgrader_preprocessors(), ClearOutputPreprocessor()):
            nb, resources = pre.preprocess(nb, resources)
    except RuntimeError as err:  # nbgrader's own complaints, should check_markers have missed one
        raise HomeworkError(f"{name}: {err}") from err
    for key in ("widgets", "papermill", "execution", "celltoolbar"):
        nb.metadata.pop(key, None)
    for i, c in enumerate(nb.cells):  # a last look, in every spelling the checks know
        if (MARKER.search(c.source) or SOLUTION_TAG in cell_tags(c)
                or any(SOLUTION_FENCE.match(line) for line in c.source.split("\n"))
                or "rubric" in (c.get("metadata", {}).get("funml") if isinstance(
                    c.get("metadata", {}).get("funml"), dict) else {})):
            raise HomeworkError(f"{name}, cell {i} of the student version: solution material left over")
    nbformat.validate(nb)
    return nb, {**resources["homework"], "regions": regions, "answers": answers, "hidden_tests": hidden}


def chapter_paths(src_dir: Path) -> list[Path]:
    """Chapter notebooks of `src_dir` in _toc.yml order (toc in src_dir or its parent), else sorted *.ipynb."""
    src_dir = Path(src_dir).resolve()
    if not src_dir.is_dir():
        raise ValueError(f"src_dir must be an existing folder, got {src_dir}")
    for toc in (src_dir / "_toc.yml", src_dir.parent / "_toc.yml"):
        if toc.exists():
            paths = chapter_notebooks(toc.parent, toc)
            return [p for p in paths if src_dir in p.resolve().parents]
    return sorted(src_dir.glob("*.ipynb"))


def write_homework(src_dir: str | Path, out_dir: str | Path) -> list[Path]:
    """Write the student version of every chapter in `src_dir` to `out_dir`; return the written paths.

    Every chapter is converted before anything is written, so one bad notebook leaves `out_dir` as it was.
    """
    src_dir = Path(src_dir)
    if not src_dir.is_dir():
        raise HomeworkError(f"source folder {src_dir} does not exist or is not a folder")
    out_dir = check_output_dir(src_dir, out_dir)
    src_real = src_dir.resolve()
    converted = []
    for path in chapter_paths(src_real):
        nb, stats = student_version(read_notebook(path), name=str(path))
        converted.append((out_dir / path.resolve().relative_to(src_real), nb, stats))
    written = []
    for target, nb, stats in converted:
        make_dirs(target.parent, src_real)
        atomic_write_text(target, nbformat.writes(nb) + "\n")
        written.append(target)
        print(f"{target}: {stats['regions']} solution regions, {stats['answers']} answer cells and "
              f"{stats['cells_stubbed']} solution cells stubbed, {stats['text_removed']} solution texts and "
              f"{stats['hidden_tests']} hidden tests removed")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursekit.homework", description=__doc__.split("\n")[0])
    parser.add_argument("src_dir", help="folder with the chapter notebooks, e.g. book")
    parser.add_argument("out_dir", help="where the student versions go, e.g. homework (outside src_dir)")
    args = parser.parse_args(argv)
    try:
        written = write_homework(args.src_dir, args.out_dir)
    except (NotebookError, ValueError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if not written:
        print(f"no chapter notebooks found in {args.src_dir}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
