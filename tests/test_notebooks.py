"""Notebook harness: every chapter in _toc.yml runs top to bottom with tiny parameters, then replays.

Step 1 executes the chapter with papermill, injecting the small values stored in the notebook's
metadata ("funml" -> "test_parameters"), so a chapter runs in seconds.
Step 2 runs the executed copy through nbval: cells whose first line is `# NBVAL_CHECK_OUTPUT` must
print exactly what they printed in step 1 (seeded numbers reproduce).
At tiny parameters the chapters' claims cannot hold, so they run with FUNML_CLAIMS=skip (each claims
cell then prints that it was skipped); tests/test_claims.py runs the chapters at their defaults.
"""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from coursekit.toc import chapter_notebooks

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "_build" / "test-notebooks"
CHECK_MARK = "# NBVAL_CHECK_OUTPUT"
MAX_LINE = 79  # what the rendered page and Colab show without a sideways scrollbar


CHAPTERS = chapter_notebooks(ROOT)


def test_toc_lists_notebook_chapters():
    assert CHAPTERS, "_toc.yml lists no .ipynb chapter: the harness would test nothing"


def code_cells(nb) -> list:
    return [c for c in nb.cells if c.cell_type == "code"]


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_is_clean_and_parameterised(path: Path):
    nb = nbformat.read(path, as_version=4)
    dirty = [i for i, c in enumerate(code_cells(nb)) if c.outputs or c.execution_count]
    assert not dirty, f"{path.name}: code cells {dirty} carry outputs; clear them before committing"

    tagged = [c for c in code_cells(nb) if "parameters" in c.metadata.get("tags", [])]
    assert len(tagged) == 1, f"{path.name}: needs exactly one cell tagged 'parameters'"
    params = nb.metadata.get("funml", {}).get("test_parameters")
    assert params, f"{path.name}: metadata funml.test_parameters (tiny values for tests) is missing"
    defined = {line.split("=")[0].strip() for line in tagged[0].source.splitlines()
               if "=" in line and not line.lstrip().startswith("#")}
    unknown = sorted(set(params) - defined)
    assert not unknown, f"{path.name}: test_parameters {unknown} are not set in the parameters cell"

    checked = [c for c in code_cells(nb) if c.source.startswith(CHECK_MARK)]
    if path.stem[:2].isdigit() and path.stem[:2] != "00":
        assert checked, f"{path.name}: no cell starts with {CHECK_MARK}; key numbers are unchecked"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_code_lines_fit_the_page(path: Path):
    nb = nbformat.read(path, as_version=4)
    long = [f"cell {i}, line {n + 1} ({len(line)} chars): {line.strip()[:60]}"
            for i, cell in enumerate(nb.cells) if cell.cell_type == "code"
            for n, line in enumerate(cell.source.splitlines()) if len(line) > MAX_LINE]
    assert not long, f"{path.name}: code lines longer than {MAX_LINE} characters:\n" + "\n".join(long)


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_claims_cells_are_hidden_and_checked(path: Path):
    nb = nbformat.read(path, as_version=4)
    cells = [c for c in code_cells(nb) if "claims" in c.metadata.get("tags", [])]
    for cell in cells:
        assert "remove-cell" in cell.metadata["tags"], f"{path.name}: a claims cell must be tagged remove-cell"
        assert "claim(" in cell.source, f"{path.name}: a claims cell that calls no claim() checks nothing"
    if path.stem[:2] in ("01", "02", "03", "04", "05"):
        n = sum(c.source.count("claim(") for c in cells)
        assert n >= 2, f"{path.name}: {n} claims; every lecture chapter asserts at least two"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_executes_and_reproduces(path: Path, monkeypatch):
    import papermill

    monkeypatch.setenv("FUNML_CLAIMS", "skip")

    nb = nbformat.read(path, as_version=4)
    params = nb.metadata.get("funml", {}).get("test_parameters", {})
    OUT.mkdir(parents=True, exist_ok=True)
    executed = OUT / path.name
    papermill.execute_notebook(
        str(path), str(executed), parameters=params, kernel_name="python3",
        cwd=str(path.parent), progress_bar=False, log_output=False,
    )

    result = nbformat.read(executed, as_version=4)
    for cell in code_cells(result):
        if cell.source.startswith(CHECK_MARK):
            assert cell.outputs, f"{path.name}: a {CHECK_MARK} cell printed nothing, so it checks nothing"

    replay = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--nbval-lax",
         "--nbval-current-env", "--nbval-sanitize-with", str(ROOT / "tests" / "nbval_sanitize.cfg"),
         str(executed)],
        cwd=str(path.parent), capture_output=True, text=True,
    )
    assert replay.returncode == 0, (
        f"{path.name}: nbval replay failed (a checked cell printed something else the second time)\n"
        + replay.stdout[-4000:] + replay.stderr[-2000:]
    )


def _open_inline_math(text: str) -> bool:
    """True when `text` leaves a single-$ inline formula open ($$ display math excluded)."""
    return text.replace("\\$", "").replace("$$", "").count("$") % 2 == 1


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_no_formula_is_cut_by_a_list_marker(path: Path):
    """A line that starts with '+ ', '- ' or '* ' inside an open $...$ becomes a list item in
    Markdown and leaves the formula as raw TeX on the page (chapter 4 once showed exactly that)."""
    nb = nbformat.read(path, as_version=4)
    broken = []
    for i, cell in enumerate(nb.cells):
        if cell.cell_type != "markdown":
            continue
        in_display, in_fence, paragraph = False, False, ""
        for line in cell.source.splitlines():
            stripped = line.strip()
            if stripped.startswith(("```", "~~~", ":::")):
                in_fence = not in_fence
            if stripped.startswith("$$"):
                in_display = not (in_display or stripped.count("$$") == 2)
                paragraph = ""
                continue
            if in_fence or in_display:
                continue
            if not stripped:
                paragraph = ""
                continue
            if stripped[:2] in ("+ ", "- ", "* ") and _open_inline_math(paragraph):
                broken.append(f"cell {i}: {stripped[:60]}")
            paragraph += " " + line
    assert not broken, f"{path.name}: a list marker inside inline math:\n" + "\n".join(broken)
