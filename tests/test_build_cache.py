"""A cached page is never stale: coursekit.build_cache around real Jupyter Book builds of a tiny book.

The fixture book has one notebook that prints a value from its own small library, the FUNML_DATA it
sees and its seed parameter, and a markdown cell. Each test changes one input class and builds again
the way `make book` does (prepare, jupyter-book build, record), then reads the page:
- a markdown edit: the new prose is on the page and the notebook did NOT execute again;
- a code edit, a library edit, FUNML_DATA pointing elsewhere, another seed: it executed again and the
  page shows the new output.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from coursekit import build_cache

REPO = Path(__file__).resolve().parents[1]
CONFIG = """title: cache fixture
only_build_toc_files: true
execute:
  execute_notebooks: cache
  cache: _build/.jupyter_cache
  timeout: 120
sphinx:
  config:
    nb_execution_raise_on_error: true
"""
TOC = "format: jb-book\nroot: page\n"


def _notebook(prose: str, code_line: str, seed: int) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [
        nbformat.v4.new_markdown_cell(f"# Page\n\n{prose}"),
        nbformat.v4.new_code_cell(f"seed = {seed}", metadata={"tags": ["parameters"]}),
        nbformat.v4.new_code_cell(
            "import os, time, fakelib\n"
            f"{code_line}\n"
            "print('LIB', fakelib.value())\n"
            "print('DATA', os.environ.get('FUNML_DATA', 'none'))\n"
            "print('SEED', seed)\n"
            "print('RUN', time.time_ns())"),
    ]
    return nb


@pytest.fixture
def book(tmp_path: Path) -> Path:
    root = tmp_path / "book"
    (root / "fakelib").mkdir(parents=True)
    (root / "_config.yml").write_text(CONFIG)
    (root / "_toc.yml").write_text(TOC)
    (root / "fakelib" / "__init__.py").write_text("def value():\n    return 'alpha'\n")
    nbformat.write(_notebook("First prose.", "print('CODE one')", 0), root / "page.ipynb")
    return root


def _build(root: Path, **env: str) -> str:
    """prepare, build, record (as `make book`); return the page's HTML."""
    # CI exports FUNML_DATA (and a user may have FUNML_* switches set): the fixture starts from none
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("FUNML_")}
    environ = {**inherited, "PYTHONPATH": os.pathsep.join([str(root), str(REPO)]), **env}
    cache = ["--root", str(root), "--library", str(root / "fakelib")]
    # as `make book`: prepare, jupyter-book build, record in one command
    cmd = [sys.executable, "-m", "coursekit.build_cache", "build", *cache, "--", "-W", "-n", "--quiet"]
    proc = subprocess.run(cmd, cwd=root, env=environ, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"build failed:\n{proc.stdout[-2000:]}\n{proc.stderr[-2000:]}"
    return (root / "_build" / "html" / "page.html").read_text(encoding="utf-8")


def _run_stamp(html: str) -> str:
    return html.split("RUN ", 1)[1].split()[0]


def _edit(root: Path, **change) -> None:
    nb = nbformat.read(root / "page.ipynb", as_version=4)
    if "prose" in change:
        nb.cells[0].source = f"# Page\n\n{change['prose']}"
    if "code" in change:
        nb.cells[2].source = nb.cells[2].source.replace("print('CODE one')", change["code"])
    if "seed" in change:
        nb.cells[1].source = f"seed = {change['seed']}"
    nbformat.write(nb, root / "page.ipynb")


def test_each_input_class(book: Path, tmp_path: Path):
    """One book, built nine times (Jupyter Book builds are the slow part): cold, then one change each."""
    root = book
    cold = _build(root)
    assert "LIB alpha" in cold and "SEED 0" in cold and "DATA none" in cold

    _edit(root, prose="Second prose, edited.")  # markdown only: outputs reused
    page = _build(root)
    assert "Second prose, edited." in page and "First prose." not in page
    assert _run_stamp(page) == _run_stamp(cold), "a prose-only edit must not execute the notebook"
    # the executed copy that the site check and the term edition read keeps its outputs
    executed = (root / "_build" / "jupyter_execute" / "page.ipynb").read_text(encoding="utf-8")
    assert f"RUN {_run_stamp(cold)}" in executed

    _edit(root, code="print('CODE two')")
    before, page = page, _build(root)
    assert "CODE two" in page and _run_stamp(page) != _run_stamp(before), "code cell"

    (root / "fakelib" / "__init__.py").write_text("def value():\n    return 'beta'\n")
    before, page = page, _build(root)
    assert "LIB beta" in page and "LIB alpha" not in page, "library edit"
    assert _run_stamp(page) != _run_stamp(before), "library edit"

    data = tmp_path / "data"
    data.mkdir()
    (data / "t10k-labels-idx1-ubyte").write_bytes(b"\0\0\x08\x01\0\0\0\0")
    before, page = page, _build(root, FUNML_DATA=str(data))
    assert f"DATA {data}" in page and _run_stamp(page) != _run_stamp(before), "FUNML_DATA"
    # the same folder with other contents executes again too
    (data / "t10k-labels-idx1-ubyte").write_bytes(b"\0\0\x08\x01\0\0\0\x01\x07")
    before, page = page, _build(root, FUNML_DATA=str(data))
    assert _run_stamp(page) != _run_stamp(before), "FUNML_DATA contents"

    _edit(root, seed=1)
    before, page = page, _build(root, FUNML_DATA=str(data))
    assert "SEED 1" in page and "SEED 0" not in page and _run_stamp(page) != _run_stamp(before)

    # a damaged key file: nothing is trusted, the notebook executes
    (root / "_build" / ".jupyter_cache" / build_cache.KEYS_FILE).write_text("{not json")
    before, page = page, _build(root, FUNML_DATA=str(data))
    assert _run_stamp(page) != _run_stamp(before), "damaged key file"

    # `make book FORCE=1` clears the cache: the page executes again although Sphinx has it
    subprocess.run([sys.executable, "-m", "coursekit.build_cache", "clear", "--root", str(root)],
                   cwd=root, check=True, capture_output=True,
                   env={**os.environ, "PYTHONPATH": str(REPO)})
    assert not (root / "_build" / ".jupyter_cache").exists()
    before, page = page, _build(root, FUNML_DATA=str(data))
    assert _run_stamp(page) != _run_stamp(before), "cleared cache (FORCE=1)"


def test_output_switch_is_part_of_the_key():
    keys = {build_cache.environment_key({"FUNML_CLAIMS": mode}) for mode in ("strict", "skip", "")}
    assert len(keys) == 3


def test_bib_edit_reaches_every_citing_page(tmp_path: Path):
    """An edited .bib entry: the pages that cite it (their citation tooltips carry the entry's title)
    are rendered again, not only the bibliography page; nothing executes."""
    root = tmp_path / "book"
    root.mkdir()
    (root / "_config.yml").write_text(CONFIG + "bibtex_bibfiles: [refs.bib]\n")
    (root / "_toc.yml").write_text("format: jb-book\nroot: intro\nchapters:\n- file: page\n- file: refs\n")
    (root / "intro.md").write_text("# Intro\n\nNo citation here.\n")
    bib = "@misc{kw14,\n  author = {Kingma, D.},\n  title = {Old Title Words},\n  year = {2014}\n}\n"
    (root / "refs.bib").write_text(bib)
    (root / "refs.md").write_text("# Refs\n\n```{bibliography}\n:all:\n```\n")
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = [nbformat.v4.new_markdown_cell("# Page\n\nAs in {cite:p}`kw14`."),
                nbformat.v4.new_code_cell("import time\nprint('RUN', time.time_ns())")]
    nbformat.write(nb, root / "page.ipynb")
    cold = _build(root)
    assert "Old title words" in cold
    (root / "refs.bib").write_text(bib.replace("Old Title Words", "New Title Words"))
    page = _build(root)
    assert "New title words" in page and "Old title words" not in page, "citing page kept the old entry"
    assert _run_stamp(page) == _run_stamp(cold), "a .bib edit must not execute the notebook"
