"""Colab: every chapter starts with the set-up cell, its install URL matches _config.yml, the Colab branch
of that cell installs the library (simulated: the pip command is captured, not run; and with real pip
against an address nothing answers, where it must fail with one sentence, in bounded time), the one
command that changes the repository address everywhere (on a temporary copy of the files), and the
built HTML carries an "open in Colab" link to the chapter's own .ipynb on the right branch.

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
    # without `branch` the theme links to "master"; a fork may use another branch (term2, ...)
    assert repo.get("branch") == colab.BRANCH == colab.check_branch(colab.BRANCH)
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
    assert sorted(deps[deps.index("--retries") + 2:]) == sorted(colab.DEPENDENCIES)
    assert not {"-U", "--upgrade", "--force-reinstall"} & set(deps)
    assert not any(a.split("[")[0] in ("torch", "torchvision") for a in deps + lib)
    # the library: always rebuilt from main, even when this version is already installed
    assert lib[-1] == f"funml-lib @ git+{CONFIG['repository']['url']}@{CONFIG['repository']['branch']}"
    assert "--force-reinstall" in lib and "--no-deps" in lib
    for cmd, kwargs in calls:  # bounded: pip gives up on a silent server, the run has a deadline
        assert cmd[cmd.index("--timeout") + 1] == str(colab.PIP_TIMEOUT_S) == "30"
        assert kwargs["timeout"] == colab.INSTALL_TIMEOUT_S == 600
        assert kwargs["stdin"] == subprocess.DEVNULL and kwargs["env"]["GIT_TERMINAL_PROMPT"] == "0"
        # git drops a clone that moves less than 1 byte/s for 30 s (it has no timeout of its own)
        assert kwargs["env"]["GIT_HTTP_LOW_SPEED_LIMIT"] == "1"
        assert kwargs["env"]["GIT_HTTP_LOW_SPEED_TIME"] == "30"
        assert kwargs["capture_output"] is True  # pip's own output stays out of the notebook
    assert "funml_lib" in namespace["dropped"] and "funml_lib.losses" in namespace["dropped"]


FAILED = ("Set-up failed: installing {} {}; check that this runtime is online and that the repository "
          "is public (or ask your instructor for its address), then run this cell again.")


@pytest.mark.parametrize("outcome", ["exit 1", "timeout"])
def test_setup_cell_failure_is_one_sentence(monkeypatch, outcome):
    def fake_run(cmd, *args, **kwargs):
        if "--no-deps" not in cmd:  # the dependencies install fine
            return subprocess.CompletedProcess(cmd, 0)
        if outcome == "timeout":
            raise subprocess.TimeoutExpired(cmd, kwargs["timeout"])
        return subprocess.CompletedProcess(cmd, 1, "", "fatal: could not read Username\n")

    monkeypatch.setattr(subprocess, "run", fake_run)
    monkeypatch.setitem(sys.modules, "google.colab", types.ModuleType("google.colab"))
    with pytest.raises(Exception) as info:
        exec(compile(colab.SETUP_CELL, "<setup cell>", "exec"), {})
    what = f"the course library from git+{colab.REPO_URL}@{colab.BRANCH}"
    sentence = FAILED.format(what, "failed" if outcome == "exit 1" else "did not finish in 600 s")
    assert type(info.value).__name__ == "SetupFailed" and str(info.value) == sentence
    assert info.value._render_traceback_() == [sentence]  # what Jupyter shows instead of a traceback


def test_setup_cell_with_real_pip_and_an_unreachable_repository(tmp_path):
    """Real pip in a Colab-like IPython: nothing answers at 127.0.0.1:9, so the cell must stop with
    the sentence (no traceback) well within the guard below instead of hanging."""
    url = "git+https://127.0.0.1:9/x"
    cell = colab.setup_cell().replace(f"git+{colab.REPO_URL}@{colab.BRANCH}", url)
    cell = re.sub(r"_needs = \[.*?\]", '_needs = ["pip"]', cell, flags=re.S)  # offline: a requirement already met
    script = ("import sys, types\nsys.modules['google.colab'] = types.ModuleType('google.colab')\n"
              "from IPython.core.interactiveshell import InteractiveShell\n"
              f"result = InteractiveShell.instance().run_cell({cell!r})\n"
              "print('SUCCESS' if result.success else 'STOPPED')")
    env = {**os.environ, "PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, env=env,
                         cwd=tmp_path, timeout=300)  # a hang guard, not a measurement
    out = run.stdout + run.stderr
    assert FAILED.format(f"the course library from {url}", "failed") in out
    assert out.strip().endswith("STOPPED") and "Traceback" not in out and "pip" not in out.replace(
        "SetupFailed", "").split("Set-up failed")[0]


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
    cell = re.sub(r"_needs = \[.*?\]", '_needs = ["pip"]', cell, flags=re.S)  # offline: a requirement already met
    assert '_needs = ["pip"]' in cell and url in cell
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
        f"{docname}: the first code cell must be coursekit.colab.SETUP_CELL, verbatim "
        "(python -m coursekit.colab --sync rewrites it)")


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
        f"https://colab.research.google.com/github/{slug}/blob/{colab.BRANCH}/book/02_sparse_autoencoders.ipynb")


@pytest.mark.parametrize("docname", CHAPTERS)
def test_built_html_has_colab_button_for_the_chapter(docname):
    html = built_page(docname)
    assert colab_link(docname) in html, f"{docname}.html: no link {colab_link(docname)}"
    assert "/blob/master/" not in html, f"{docname}.html: a launch link points at branch master"


# ---------------------------------------------------------------- one place for the repository address
@pytest.fixture()
def book_copy(tmp_path):
    """The files the address lives in, copied: _config.yml, _toc.yml, coursekit/colab.py, book/."""
    import shutil

    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, tmp_path / name)
    (tmp_path / "coursekit").mkdir()
    shutil.copy(ROOT / "coursekit" / "colab.py", tmp_path / "coursekit" / "colab.py")
    shutil.copytree(ROOT / "book", tmp_path / "book", ignore=shutil.ignore_patterns("_static", "_build"))
    return tmp_path


def snapshot(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def first_code_cell(path: Path) -> str:
    return next(c for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code").source


def test_one_command_moves_every_copy_of_the_address(book_copy, capsys):
    before = snapshot(book_copy)
    url, branch = "https://github.com/acme-uni/ae-course", "term-2027"
    assert colab.main(["--repository", url + ".git/", "--branch", branch, "--root", str(book_copy)]) == 0
    config = yaml.safe_load((book_copy / "_config.yml").read_text(encoding="utf-8"))
    assert config["repository"]["url"] == url and config["repository"]["branch"] == branch
    module = (book_copy / "coursekit" / "colab.py").read_text(encoding="utf-8")
    assert f'REPO_URL = "{url}"\n' in module and f'BRANCH = "{branch}"\n' in module
    chapters = chapter_notebooks(book_copy)
    assert len(chapters) == len(CHAPTERS) >= 6
    for path in chapters:
        assert first_code_cell(path) == colab.setup_cell(url, branch)
        assert f'_url = "git+{url}@{branch}"' in first_code_cell(path)
        old = nbformat.reads(before[path.relative_to(book_copy).as_posix()].decode(), as_version=4)
        new = nbformat.read(path, as_version=4)
        assert [c.source for c in new.cells][1:] == [c.source for c in old.cells][1:]  # nothing else
    after = snapshot(book_copy)
    changed = sorted(k for k in after if after[k] != before[k])
    assert changed == sorted(["_config.yml", "coursekit/colab.py"] +
                             [p.relative_to(book_copy).as_posix() for p in chapters])
    # _config.yml: exactly the two lines changed, its comments kept
    old_lines = before["_config.yml"].decode().splitlines()
    new_lines = after["_config.yml"].decode().splitlines()
    assert [(a, b) for a, b in zip(old_lines, new_lines) if a != b] == [
        (f"  url: {colab.REPO_URL}", f"  url: {url}"), (f"  branch: {colab.BRANCH}", f"  branch: {branch}")]
    assert len(old_lines) == len(new_lines)
    assert capsys.readouterr().out.strip().endswith(f"{len(changed)} file(s) changed")
    # run again: every copy agrees already, nothing is written
    assert colab.main(["--repository", url, "--branch", branch, "--root", str(book_copy)]) == 0
    assert snapshot(book_copy) == after
    assert capsys.readouterr().out.strip() == "every copy already had this address"


@pytest.mark.parametrize("url", ["https://gitlab.com/acme/ae", "http://github.com/acme/ae",
                                 "https://github.com/acme", "https://github.com/acme/ae/tree/main",
                                 "git@github.com:acme/ae.git", "https://github.com/acme/ae?x=1",
                                 "https://github.com/-acme/ae", ""])
def test_a_url_that_is_not_a_github_repository_is_refused(book_copy, capsys, url):
    before = snapshot(book_copy)
    assert colab.main(["--repository", url, "--root", str(book_copy)]) == 2
    assert capsys.readouterr().err.strip() == (
        "error: --repository must be a GitHub repository URL of the form https://github.com/<owner>/<repo>, "
        f"got {url!r}")
    assert snapshot(book_copy) == before


@pytest.mark.parametrize("branch", ["a..b", "-x", "main/", "feat.lock", "a b", ""])
def test_a_bad_branch_name_is_refused(book_copy, capsys, branch):
    before = snapshot(book_copy)
    assert colab.main([f"--branch={branch}", "--root", str(book_copy)]) == 2
    assert capsys.readouterr().err.startswith(f"error: --branch must be a git branch name")
    assert snapshot(book_copy) == before


def test_sync_rewrites_stale_setup_cells_only(book_copy, capsys):
    stale = chapter_notebooks(book_copy)[2]
    nb = nbformat.read(stale, as_version=4)
    code = [c for c in nb.cells if c.cell_type == "code"]
    code[0].source = colab.SETUP_HEAD + " (an older version of the cell)\nimport sys"
    nbformat.write(nb, stale)
    assert colab.main(["--sync", "--root", str(book_copy)]) == 0
    assert first_code_cell(stale) == colab.SETUP_CELL
    assert all(first_code_cell(p) == colab.SETUP_CELL for p in chapter_notebooks(book_copy))
    with pytest.raises(SystemExit):  # --sync keeps the address: it takes no new one
        colab.main(["--sync", "--branch", "x", "--root", str(book_copy)])


def test_nothing_is_written_unless_every_copy_can_be(book_copy, capsys, monkeypatch):
    before = snapshot(book_copy)
    broken = chapter_notebooks(book_copy)[3]
    nb = nbformat.read(broken, as_version=4)
    nb.cells.insert(0, nbformat.v4.new_code_cell("print('not the set-up cell')"))
    nbformat.write(nb, broken)
    before = snapshot(book_copy)
    assert colab.main(["--repository", "https://github.com/a/b", "--root", str(book_copy)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: {broken}: its first code cell is not the set-up cell")
    assert snapshot(book_copy) == before
    # a write that fails half-way (disk full): the files already rewritten get their old text back
    nb.cells.pop(0)
    nbformat.write(nb, broken)
    before = snapshot(book_copy)
    import coursekit.safe_io as safe_io

    real, writes = safe_io.atomic_write_text, []

    def failing(path, text):
        writes.append(path)
        if len(writes) == 4:
            raise OSError(28, "No space left on device")
        return real(path, text)

    monkeypatch.setattr(safe_io, "atomic_write_text", failing)
    with pytest.raises(OSError, match="No space left"):
        colab.rewrite(book_copy, "https://github.com/a/b", "main")
    assert snapshot(book_copy) == before and len(writes) == 4 + 3  # three written, three put back
    # the command says so in one line, without a traceback
    writes.clear()
    capsys.readouterr()
    assert colab.main(["--repository", "https://github.com/a/b", "--root", str(book_copy)]) == 2
    assert capsys.readouterr().err == (
        "error: could not write every copy ([Errno 28] No space left on device); the files already "
        "rewritten were put back, so every copy still has the old address\n")
    assert snapshot(book_copy) == before and len(writes) == 4 + 3


def test_a_symlinked_copy_is_refused_before_anything_is_written(book_copy, capsys):
    config = book_copy / "_config.yml"
    target = book_copy / "elsewhere.yml"
    config.rename(target)
    config.symlink_to(target)
    before = snapshot(book_copy)
    assert colab.main(["--repository", "https://github.com/a/b", "--root", str(book_copy)]) == 2
    assert "is a symbolic link" in capsys.readouterr().err
    assert snapshot(book_copy) == before
