"""Student versions of the chapters: solutions out, `# YOUR CODE HERE` stubs in, outputs cleared.

    python -m coursekit.homework book homework      # what `make homework` runs

What is removed (the markers the chapters use):
- code between `### BEGIN SOLUTION` and `### END SOLUTION` -> `# YOUR CODE HERE` + `raise NotImplementedError()`
  (nbgrader's ClearSolutions preprocessor, so the same notebooks also work with `nbgrader generate_assignment`);
- code cells tagged "solution", or inside a gated `{solution-start}` ... `{solution-end}` pair, without
  markers -> the stub as a whole cell;
- markdown cells tagged "solution", and MyST `{solution}`, `{solution-start}`, `{solution-end}` blocks;
- all outputs, execution counts and saved widget state.
Exercise text (`{exercise}` blocks) stays. Chapters come from _toc.yml (in SRC_DIR or its parent), else
every *.ipynb in SRC_DIR.
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

from coursekit.toc import chapter_notebooks

SOLUTION_TAG = "solution"
CODE_STUB = "# YOUR CODE HERE\nraise NotImplementedError()"
BEGIN, END = "BEGIN SOLUTION", "END SOLUTION"
# opening line of a MyST directive fence: ```{solution} / ::::{solution-start} ..., any indentation
_OPEN = re.compile(r"^\s*(?P<fence>`{3,}|:{3,})\{(?P<name>solution(?:-start|-end)?)\}")


def strip_solution_directives(markdown: str) -> tuple[str, int]:
    """Remove MyST solution blocks from markdown text; return (text, number of blocks removed).

    A block runs from its opening fence to the first closing fence of the same character and at
    least the same length (so a ```python fence nested in a ````{solution} stays inside it); an
    unclosed block runs to the end of the text, as in MyST.
    """
    lines, kept, removed, i = markdown.split("\n"), [], 0, 0
    while i < len(lines):
        m = _OPEN.match(lines[i])
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


def _tags(cell: NotebookNode) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


def _has_markers(source: str) -> bool:
    return BEGIN in source or END in source


def _gate_after(source: str, inside: bool) -> bool:
    """Whether the cells after this markdown are inside a gated {solution-start} ... {solution-end}."""
    for line in source.split("\n"):  # only directive fences count, not a mention in inline code
        m = _OPEN.match(line)
        if m and m.group("name") != "solution":
            inside = m.group("name") == "solution-start"
    return inside


class RemoveSolutionText(Preprocessor):
    """nbconvert preprocessor: drop solution markdown, stub solution code cells that carry no markers."""

    enabled = Bool(True, help="on by default, so nbgrader and nbconvert run it once registered").tag(config=True)

    def preprocess(self, nb: NotebookNode, resources: dict) -> tuple[NotebookNode, dict]:
        cells, inside = [], False
        stats = resources.setdefault("homework", {"text_removed": 0, "cells_stubbed": 0})
        for cell in nb.cells:
            tags = _tags(cell)
            if cell.cell_type == "markdown":
                was_inside, inside = inside, _gate_after(cell.source, inside)
                text, n = strip_solution_directives(cell.source)
                if SOLUTION_TAG in tags or (was_inside and n == 0):
                    stats["text_removed"] += 1  # solution text, or text between the gates
                    continue
                stats["text_removed"] += n
                if not text.strip():
                    continue
                cell.source = text
            elif cell.cell_type == "code" and (SOLUTION_TAG in tags or inside):
                if not _has_markers(cell.source):
                    cell.source = CODE_STUB
                    stats["cells_stubbed"] += 1
                cell.metadata["tags"] = [t for t in tags if t != SOLUTION_TAG]
                if not cell.metadata["tags"]:
                    del cell.metadata["tags"]
            cells.append(cell)
        nb.cells = cells
        return nb, resources


def _clear_solutions() -> Preprocessor:
    try:
        from nbgrader.preprocessors import ClearSolutions
    except ImportError as err:  # nbgrader is the optional extra "homework"
        raise ImportError("student versions need nbgrader: pip install -e '.[homework]'") from err
    # enforce_metadata=False: our cells carry markers but no nbgrader cell metadata (no database needed)
    return ClearSolutions(enforce_metadata=False, code_stub={"python": CODE_STUB})


def nbgrader_preprocessors() -> list[type]:
    """nbgrader's generate_assignment preprocessors with RemoveSolutionText first (for nbgrader_config.py).

    nbgrader alone clears only BEGIN/END SOLUTION regions; this also drops the book's solution text.
    """
    from nbgrader.converters import GenerateAssignment

    return [RemoveSolutionText, *GenerateAssignment.class_traits()["preprocessors"].default()]


def student_version(nb: NotebookNode) -> tuple[NotebookNode, dict]:
    """Return (student notebook, stats) for a chapter notebook; the input is not modified.

    stats: {"text_removed": markdown solutions removed, "cells_stubbed": whole cells replaced,
    "regions": BEGIN/END SOLUTION regions replaced}.
    """
    if not isinstance(nb, NotebookNode):
        raise TypeError(f"nb must be a notebook (nbformat.NotebookNode), got {type(nb).__name__}")
    nb = copy.deepcopy(nb)
    regions = sum(c.source.count(BEGIN) for c in nb.cells)
    resources: dict = {}
    for pre in (RemoveSolutionText(), _clear_solutions(), ClearOutputPreprocessor()):
        nb, resources = pre.preprocess(nb, resources)
    for key in ("widgets", "papermill", "execution"):
        nb.metadata.pop(key, None)
    leftover = [i for i, c in enumerate(nb.cells) if _has_markers(c.source) or SOLUTION_TAG in _tags(c)
                or (c.cell_type == "markdown" and _OPEN.search(c.source))]
    if leftover:
        raise RuntimeError(f"solution material left in cells {leftover} of the student version")
    nbformat.validate(nb)
    return nb, {**resources["homework"], "regions": regions}


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
    """Write the student version of every chapter in `src_dir` to `out_dir`; return the written paths."""
    src_dir, out_dir = Path(src_dir).resolve(), Path(out_dir)
    written = []
    for path in chapter_paths(src_dir):
        nb, stats = student_version(nbformat.read(path, as_version=4))
        target = out_dir / path.resolve().relative_to(src_dir)
        target.parent.mkdir(parents=True, exist_ok=True)
        nbformat.write(nb, target)
        written.append(target)
        print(f"{target}: {stats['regions']} solution regions and {stats['cells_stubbed']} solution cells "
              f"stubbed, {stats['text_removed']} solution texts removed")
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursekit.homework", description=__doc__.split("\n")[0])
    parser.add_argument("src_dir", help="folder with the chapter notebooks, e.g. book")
    parser.add_argument("out_dir", help="where the student versions go, e.g. homework")
    args = parser.parse_args(argv)
    written = write_homework(args.src_dir, args.out_dir)
    if not written:
        print(f"no chapter notebooks found in {args.src_dir}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
