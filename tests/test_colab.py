"""Colab: every chapter starts with the set-up cell, its install URL matches _config.yml, the Colab branch
of that cell installs the library (simulated: the pip command is captured, not run), and the built HTML
carries an "open in Colab" link to the chapter's own .ipynb on the right branch.

The HTML checks need `make book` first; without _build/html they are skipped (CI runs `make test` before
`make book`; coursekit.check_site checks the same link after the build). Run them after a build with
    FUNML_REQUIRE_HTML=1 .venv/bin/python -m pytest tests/test_colab.py -k html
where a chapter page that is missing from the build then fails instead of being skipped.
"""
from __future__ import annotations

import os
import re
import subprocess
import sys
import types
from pathlib import Path

import nbformat
import pytest
import yaml

from coursekit import colab
from coursekit.toc import chapter_notebooks

ROOT = Path(__file__).resolve().parents[1]
HTML = ROOT / "_build" / "html"
CONFIG = yaml.safe_load((ROOT / "_config.yml").read_text(encoding="utf-8"))


def chapter_docnames() -> list[str]:
    """Docnames (path from the book root, no suffix) of the notebook chapters in _toc.yml."""
    return [p.relative_to(ROOT).with_suffix("").as_posix() for p in chapter_notebooks(ROOT)]


CHAPTERS = chapter_docnames()


def colab_link(docname: str) -> str:
    """The link the chapter's Colab button must have: the notebook's path inside the git repository."""
    repo = CONFIG["repository"]
    slug = repo["url"].rstrip("/").removesuffix(".git").split("github.com/")[1]
    in_repo = f"{docname}.ipynb"  # docnames are relative to _config.yml's folder, the repository root
    return f"{CONFIG['launch_buttons']['colab_url'].rstrip('/')}/github/{slug}/blob/{repo['branch']}/{in_repo}"


# ---------------------------------------------------------------------------- configuration
def test_one_source_of_truth_for_url_and_branch():
    repo = CONFIG["repository"]
    assert colab.REPO_URL == repo["url"].rstrip("/")
    # without `branch` the theme links to "master"; this repository's branch is main
    assert repo.get("branch") == colab.BRANCH == "main"
    assert CONFIG["launch_buttons"]["colab_url"].rstrip("/") == "https://colab.research.google.com"


def test_path_to_book_matches_where_the_book_lives():
    # sphinx-book-theme builds <colab_url>/github/<org>/<repo>/blob/<branch>/<path_to_book>/<docname>.ipynb;
    # _config.yml sits at the repository root, so path_to_book must be empty ("." would give "./book/..").
    path_to_book = CONFIG["repository"].get("path_to_book") or ""
    assert path_to_book.strip("/") == "", (
        f"path_to_book must be empty for a book at the repository root, got {path_to_book!r}")
    for docname in CHAPTERS:
        assert (ROOT / path_to_book / f"{docname}.ipynb").is_file()


def test_install_spec_names_this_package():
    project = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'name = "funml-lib"' in project
    assert colab.INSTALL_SPEC == f"funml-lib @ git+{colab.REPO_URL}@{colab.BRANCH}"
    assert f'"git+{colab.REPO_URL}@{colab.BRANCH}"' in colab.SETUP_CELL


def test_setup_cell_installs_the_dependencies_except_torch():
    import tomllib

    deps = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]["dependencies"]
    names = [re.split(r"[<>=!~;\[ ]", d, maxsplit=1)[0] for d in deps]
    assert sorted(colab.DEPENDENCIES) == sorted(n for n in names if n not in ("torch", "torchvision"))


def test_setup_cell_lines_fit_a_notebook():
    assert max(len(line) for line in colab.SETUP_CELL.split("\n")) <= 79


# ---------------------------------------------------------------------------- the set-up cell
def run_setup_cell(monkeypatch, in_colab: bool) -> tuple[dict, list]:
    """Execute SETUP_CELL as a notebook would; return (its namespace, the captured subprocess calls)."""
    calls: list = []

    def fake_run(cmd, *args, **kwargs):
        calls.append((cmd, kwargs))
        return subprocess.CompletedProcess(cmd, 0)

    monkeypatch.setattr(subprocess, "run", fake_run)
    if in_colab:
        fake = types.ModuleType("google.colab")
        monkeypatch.setitem(sys.modules, "google.colab", fake)
    else:
        monkeypatch.delitem(sys.modules, "google.colab", raising=False)
    loaded = {name: mod for name, mod in sys.modules.items() if name.split(".")[0] == "funml_lib"}
    namespace: dict = {}
    try:
        exec(compile(colab.SETUP_CELL, "<setup cell>", "exec"), namespace)
        namespace["dropped"] = sorted(set(loaded) - set(sys.modules))
    finally:
        sys.modules.update(loaded)  # this test process keeps its own funml_lib
    return namespace, calls


def test_setup_cell_in_colab_installs_from_the_repository(monkeypatch):
    import funml_lib.losses  # noqa: F401  (an older version the runtime had imported)

    namespace, calls = run_setup_cell(monkeypatch, in_colab=True)
    assert namespace["IN_COLAB"] is True
    assert len(calls) == 2
    (deps, deps_kwargs), (lib, lib_kwargs) = calls
    assert deps[:4] == lib[:4] == [sys.executable, "-m", "pip", "install"]
    # the dependencies: only when missing (no upgrade), and never torch (Colab's CUDA build stays)
    assert sorted(a for a in deps[4:] if not a.startswith("-")) == sorted(colab.DEPENDENCIES)
    assert not {"-U", "--upgrade", "--force-reinstall"} & set(deps)
    assert not any(a.split("[")[0] in ("torch", "torchvision") for a in deps + lib)
    # the library: always rebuilt from main, even when this version is already installed
    assert lib[-1] == f"funml-lib @ git+{CONFIG['repository']['url']}@{CONFIG['repository']['branch']}"
    assert "--force-reinstall" in lib and "--no-deps" in lib
    assert deps_kwargs.get("check") is lib_kwargs.get("check") is True  # a failed install stops the notebook
    assert "funml_lib" in namespace["dropped"] and "funml_lib.losses" in namespace["dropped"]


def test_setup_cell_outside_colab_changes_nothing(monkeypatch):
    modules, path = set(sys.modules), list(sys.path)
    namespace, calls = run_setup_cell(monkeypatch, in_colab=False)
    assert calls == [] and namespace["IN_COLAB"] is False
    assert set(sys.modules) - modules == set() and sys.path == path


# A stand-in for funml-lib with an in-tree build backend, so pip builds it offline and in a second.
FAKE_BACKEND = """
import base64, hashlib, pathlib, zipfile
DIST = "funml_lib-0.1.0.dist-info"
def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):
    name = "funml_lib-0.1.0-py3-none-any.whl"
    files = {"funml_lib/__init__.py": pathlib.Path("funml_lib/__init__.py").read_bytes(),
             DIST + "/METADATA": b"Metadata-Version: 2.1\\nName: funml-lib\\nVersion: 0.1.0\\n",
             DIST + "/WHEEL": b"Wheel-Version: 1.0\\nGenerator: t\\nRoot-Is-Purelib: true\\nTag: py3-none-any\\n"}
    record = []
    with zipfile.ZipFile(pathlib.Path(wheel_directory) / name, "w") as z:
        for path, data in files.items():
            z.writestr(path, data)
            digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
            record.append(f"{path},sha256={digest},{len(data)}")
        z.writestr(DIST + "/RECORD", "\\n".join(record + [DIST + "/RECORD,,"]) + "\\n")
    return name
"""


def test_setup_cell_really_picks_up_a_new_commit_of_the_same_version(tmp_path):
    """Real pip, offline: a runtime that installed commit A gets commit B of the same version 0.1.0."""
    import shutil

    base = getattr(sys, "_base_executable", sys.executable)
    if shutil.which("git") is None:
        pytest.skip("needs git")
    repo = tmp_path / "repo"
    (repo / "funml_lib").mkdir(parents=True)
    (repo / "backend.py").write_text(FAKE_BACKEND)
    (repo / "pyproject.toml").write_text('[build-system]\nrequires = []\nbuild-backend = "backend"\n'
                                         'backend-path = ["."]\n')
    git = ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t"]

    def commit(label: str) -> None:
        (repo / "funml_lib" / "__init__.py").write_text(f"COMMIT = {label!r}\n")
        subprocess.run(git + ["add", "-A"], check=True, capture_output=True)
        subprocess.run(git + ["commit", "-qm", label], check=True, capture_output=True)

    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True, capture_output=True)
    commit("A")
    venv = tmp_path / "runtime"  # the Colab runtime: its own site-packages, pip from the base Python
    subprocess.run([base, "-m", "venv", "--without-pip", "--system-site-packages", str(venv)], check=True)
    python = str(venv / "bin" / "python")
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    if subprocess.run([python, "-m", "pip", "--version"], capture_output=True, env=env).returncode:
        pytest.skip("the base Python has no pip")
    url = f"git+file://localhost{repo}@main"  # pip 23 wants a host in a PEP 508 file URL
    subprocess.run([python, "-m", "pip", "install", "-q", "--no-deps", f"funml-lib @ {url}"],
                   check=True, capture_output=True, env=env)
    commit("B")
    cell = colab.SETUP_CELL.replace(f"git+{colab.REPO_URL}@{colab.BRANCH}", url)
    cell = re.sub(r"_needs = \[.*\]", '_needs = ["pip"]', cell)  # offline: a requirement already met
    script = ("import sys, types\nimport funml_lib\nbefore = funml_lib.COMMIT\n"
              "sys.modules['google.colab'] = types.ModuleType('google.colab')\n"
              f"exec({cell!r})\nimport funml_lib\nprint(before, funml_lib.COMMIT)")
    run = subprocess.run([python, "-c", script], capture_output=True, text=True, env=env, cwd=tmp_path)
    assert run.returncode == 0, run.stderr[-2000:]
    assert run.stdout.split() == ["A", "B"]  # same process: the old import is dropped, the new one read


@pytest.mark.parametrize("docname", CHAPTERS)
def test_every_chapter_starts_with_the_setup_cell(docname):
    nb = nbformat.read(ROOT / f"{docname}.ipynb", as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert code, f"{docname}: no code cell"
    assert code[0].source == colab.SETUP_CELL, (
        f"{docname}: the first code cell must be coursekit.colab.SETUP_CELL, verbatim")


@pytest.mark.parametrize("docname", CHAPTERS)
def test_chapter_that_loads_mnist_says_which_data(docname):
    # In Colab MNIST comes from torchvision's download; elsewhere maybe the offline fallback: say which.
    nb = nbformat.read(ROOT / f"{docname}.ipynb", as_version=4)
    code = "\n".join(c.source for c in nb.cells if c.cell_type == "code")
    if "load_mnist(" in code:
        assert "describe_data(" in code or "data_source(" in code, (
            f"{docname}: loads MNIST but never prints describe_data(...) (or data_source(...))")


# ---------------------------------------------------------------------------- the built HTML
def built_page(docname: str) -> str:
    if not HTML.is_dir():
        pytest.skip("_build/html does not exist yet: run `make book`, then this test (CI: make check-site)")
    page = HTML / f"{docname}.html"
    if not page.is_file():
        if os.environ.get("FUNML_REQUIRE_HTML") == "1":
            pytest.fail(f"{page} was not built")
        pytest.skip(f"{page.name} is not in this (older?) build; rebuild with `make book`")
    return page.read_text(encoding="utf-8")


def test_colab_link_formula():
    slug = colab.REPO_URL.split("github.com/")[1]
    assert colab_link("book/02_sparse_autoencoders") == (
        f"https://colab.research.google.com/github/{slug}/blob/main/book/02_sparse_autoencoders.ipynb")


@pytest.mark.parametrize("docname", CHAPTERS)
def test_built_html_has_colab_button_for_the_chapter(docname):
    html = built_page(docname)
    assert colab_link(docname) in html, f"{docname}.html: no link {colab_link(docname)}"
    assert "/blob/master/" not in html, f"{docname}.html: a launch link points at branch master"
