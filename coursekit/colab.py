"""The first cell of every chapter (installs funml_lib in Google Colab), and the one command that
changes the repository address it installs from.

The cell cannot import funml_lib (in Colab it is not installed yet), so it is plain code kept here as
text; tests check that every chapter starts with exactly this cell, that the URL matches _config.yml
and that the packages it installs are pyproject.toml's dependencies except torch and torchvision.

It always installs the newest commit of the branch: `--force-reinstall --no-deps` rebuilds funml-lib
from the repository even when a runtime already has the same version number (pip would otherwise say
"Requirement already satisfied" and keep the old commit), and touches no other package. The library's
other dependencies are installed only when missing (no `--upgrade`: a runtime keeps its ipywidgets 7
or 8), and torch/torchvision are never named, so Colab's own CUDA build of torch stays. Modules of an
older funml_lib already imported in the runtime are dropped from `sys.modules`, so the next import
reads the new version. An install that fails (no network, a private repository) or hangs (bounded by
pip's --timeout, git's low-speed limit and a subprocess timeout; git never waits for a password)
stops the notebook with one sentence saying what failed and what to do, not pip's traceback.

A course that forks the book changes the address everywhere with one command, run from the
repository root (it rewrites _config.yml, the two constants below and every chapter's first cell):

    python -m coursekit.colab --repository https://github.com/OWNER/REPO --branch main

and `python -m coursekit.colab --sync` rewrites every chapter's first cell from SETUP_CELL after
this file changed. Every file is written atomically; if one write fails, the ones already written
are put back, so the copies never disagree.
"""
from __future__ import annotations

import argparse
import os
import re
import sys
import textwrap
from pathlib import Path

REPO_URL = "https://github.com/funml-course/autoencoder-extensions"
BRANCH = "main"
# pyproject.toml's dependencies without torch and torchvision (tests/test_colab.py keeps them in step)
DEPENDENCIES = ("numpy", "matplotlib", "tqdm", "ipywidgets", "ipython", "pillow", "mlxtend")
PIP_TIMEOUT_S = 30  # pip's wait for a silent server, per connection
INSTALL_TIMEOUT_S = 600  # one whole pip run (a slow but working runtime takes about a minute)
SETUP_HEAD = "# Set-up. In Google Colab"  # how a chapter's set-up cell is recognised

GITHUB_URL = re.compile(r"https://github\.com/(?P<owner>[A-Za-z0-9](?:[A-Za-z0-9-]{0,38}))"
                        r"/(?P<repo>[A-Za-z0-9._-]{1,100})")
BRANCH_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,199}")


def setup_cell(repo_url: str = REPO_URL, branch: str = BRANCH) -> str:
    """The set-up cell's code for a repository address and branch (lines of at most 79 characters)."""
    needs = "\n".join(textwrap.wrap(", ".join(f'"{d}"' for d in DEPENDENCIES), 64,
                                   subsequent_indent=" " * 14, break_long_words=False))
    return f'''\
# Set-up. In Google Colab this installs the course library (funml_lib) from
# the newest version of the book's repository; on your own machine (after
# `make book` or `pip install -e .`) it does nothing.
import os
import subprocess
import sys

IN_COLAB = "google.colab" in sys.modules
if IN_COLAB:
    _url = "git+{repo_url}@{branch}"
    # --timeout: give up on a silent server instead of waiting for ever
    _pip = [sys.executable, "-m", "pip", "install", "--quiet",
            "--timeout", "{PIP_TIMEOUT_S}", "--retries", "1"]
    # what funml_lib needs besides torch; Colab's torch is left as it is
    _needs = [{needs}]
    # --force-reinstall: fetch the branch again even if this version is
    # installed
    _lib = ["--force-reinstall", "--no-deps", "funml-lib @ " + _url]

    class SetupFailed(Exception):
        def _render_traceback_(self):  # Jupyter shows this, not a traceback
            return [str(self)]

    for _what, _args in [("the packages the course needs", _needs),
                         ("the course library from " + _url, _lib)]:
        # no password prompt from git (a private repository fails), and
        # git gives up on a download that stalls instead of waiting
        _env = dict(os.environ, GIT_TERMINAL_PROMPT="0",
                    GIT_HTTP_LOW_SPEED_LIMIT="1",
                    GIT_HTTP_LOW_SPEED_TIME="{PIP_TIMEOUT_S}")
        try:
            _run = subprocess.run(
                _pip + _args, capture_output=True, text=True,
                stdin=subprocess.DEVNULL, timeout={INSTALL_TIMEOUT_S},
                env=_env)
            _failed = "failed" if _run.returncode else ""
        except subprocess.TimeoutExpired:
            _failed = "did not finish in {INSTALL_TIMEOUT_S} s"
        if _failed:
            raise SetupFailed(
                f"Set-up failed: installing {{_what}} {{_failed}}; check that "
                "this runtime is online and that the repository is public "
                "(or ask your instructor for its address), then run this "
                "cell again.")
    for _name in [m for m in sys.modules if m.split(".")[0] == "funml_lib"]:
        del sys.modules[_name]  # an import after this reads the new version'''


SETUP_CELL = setup_cell()
INSTALL_SPEC = f"funml-lib @ git+{REPO_URL}@{BRANCH}"


# ------------------------------------------------------------------------ one place for the address
class AddressError(ValueError):
    """A repository URL, branch or file that the rewrite cannot use; the message names which."""


def check_repository(url: str) -> str:
    """`url` without a trailing slash or .git if it is https://github.com/<owner>/<repo>."""
    clean = str(url).strip().rstrip("/").removesuffix(".git")
    if not GITHUB_URL.fullmatch(clean) or clean.endswith(("/.", "/..")):
        raise AddressError(f"--repository must be a GitHub repository URL of the form "
                           f"https://github.com/<owner>/<repo>, got {url!r}")
    return clean


def check_branch(branch: str) -> str:
    """`branch` if git would accept it as a branch name (letters, digits, . _ / -; no '..')."""
    name = str(branch)
    if (not BRANCH_NAME.fullmatch(name) or ".." in name or "//" in name
            or name.endswith(("/", ".", ".lock"))):
        raise AddressError(f"--branch must be a git branch name (letters, digits, '.', '_', '/', '-'; "
                           f"no '..', not ending in '/', '.' or '.lock'), got {branch!r}")
    return name


def _replace_one(text: str, pattern: str, new: str, where: Path, what: str) -> str:
    result, n = re.subn(pattern, lambda m: m.group(1) + new, text, flags=re.MULTILINE)
    if n != 1:
        raise AddressError(f"{where}: expected exactly one {what} line, found {n}; fix the file by hand")
    return result


def _config_text(text: str, where: Path, url: str, branch: str) -> str:
    """_config.yml with the `repository:` block's url and branch replaced (comments kept)."""
    block = re.search(r"^repository:[^\n]*\n((?:[ \t]+[^\n]*\n|[ \t]*\n)*)", text, flags=re.MULTILINE)
    if block is None:
        raise AddressError(f"{where}: no `repository:` section; fix the file by hand")
    body = _replace_one(block.group(1), r"^([ \t]+url:[ \t]*)\S.*$", url, where, "repository url")
    body = _replace_one(body, r"^([ \t]+branch:[ \t]*)\S.*$", branch, where, "repository branch")
    return text[:block.start(1)] + body + text[block.end(1):]


def _module_text(text: str, where: Path, url: str, branch: str) -> str:
    """This file's text with REPO_URL and BRANCH set."""
    text = _replace_one(text, r'^(REPO_URL = )".*"$', f'"{url}"', where, "REPO_URL")
    return _replace_one(text, r'^(BRANCH = )".*"$', f'"{branch}"', where, "BRANCH")


def _chapter_text(path: Path, cell: str) -> str:
    """The chapter's JSON with its first code cell replaced by `cell` (it must be the set-up cell)."""
    import nbformat

    from coursekit.safe_io import NotebookError, read_notebook

    try:
        nb = read_notebook(path)
    except NotebookError as err:
        raise AddressError(str(err)) from err
    code = [c for c in nb.cells if c.cell_type == "code"]
    if not code or not code[0].source.startswith(SETUP_HEAD):
        raise AddressError(f"{path}: its first code cell is not the set-up cell (it must start with "
                           f"{SETUP_HEAD!r}); put the cell back first")
    code[0].source = cell
    return nbformat.writes(nb) + "\n"


def _write_all(texts: dict[Path, str]) -> list[Path]:
    """Write every changed file atomically; if one write fails, put back the ones already written."""
    from coursekit import safe_io

    for path in texts:  # checked before the first write: never written through a link
        if path.is_symlink():
            raise AddressError(f"{path} is a symbolic link (to {os.readlink(path)}); refusing to write "
                               "through it: replace it by the file itself")
    old = {p: p.read_text(encoding="utf-8") for p in texts}
    changed = [p for p in texts if texts[p] != old[p]]
    done: list[Path] = []
    try:
        for path in changed:
            safe_io.atomic_write_text(path, texts[path])
            done.append(path)
    except BaseException:
        for path in done:
            safe_io.atomic_write_text(path, old[path])
        raise
    return changed


def rewrite(root: str | Path, repository: str | None = None, branch: str | None = None) -> list[Path]:
    """Set the repository address in every copy under `root`; return the files that changed.

    repository/branch None: keep the address in `root`'s coursekit/colab.py and only rewrite the
    chapters' set-up cells from it (--sync). Nothing is written unless every file can be rewritten.
    """
    from coursekit.toc import chapter_notebooks

    root = Path(root)
    config, module = root / "_config.yml", root / "coursekit" / "colab.py"
    for path in (config, module):
        if not path.is_file():
            raise AddressError(f"--root {root}: {path.relative_to(root)} is missing; run this from the "
                               "book's repository root or pass --root")
    module_text = module.read_text(encoding="utf-8")
    current = dict(re.findall(r'^(REPO_URL|BRANCH) = "(.*)"$', module_text, flags=re.MULTILINE))
    url = check_repository(repository if repository is not None else current.get("REPO_URL", ""))
    name = check_branch(branch if branch is not None else current.get("BRANCH", ""))
    texts = {config: _config_text(config.read_text(encoding="utf-8"), config, url, name),
             module: _module_text(module_text, module, url, name)}
    cell = setup_cell(url, name)
    for chapter in chapter_notebooks(root):
        texts[chapter] = _chapter_text(chapter, cell)
    return _write_all(texts)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursekit.colab", description=(
        "Set the GitHub repository the book installs funml_lib from and links to (Colab buttons), "
        "in _config.yml, coursekit/colab.py and every chapter's set-up cell."))
    parser.add_argument("--repository", help="https://github.com/<owner>/<repo>")
    parser.add_argument("--branch", help="the branch students install from (default: keep)")
    parser.add_argument("--sync", action="store_true",
                        help="only rewrite every chapter's set-up cell from coursekit/colab.py")
    parser.add_argument("--root", default=".", help="the book's repository root (default: .)")
    args = parser.parse_args(argv)
    if args.sync == (args.repository is not None or args.branch is not None):
        parser.error("give --repository URL [--branch NAME], or --branch NAME, or --sync")
    try:
        changed = rewrite(args.root, args.repository, args.branch)
    except AddressError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # a write failed (disk full, no permission): _write_all put the others back
        print(f"error: could not write every copy ({err}); the files already rewritten were put back, "
              "so every copy still has the old address", file=sys.stderr)
        return 2
    for path in changed:
        print(f"rewrote {path}")
    print(f"{len(changed)} file(s) changed" if changed else "every copy already had this address")
    return 0


if __name__ == "__main__":
    sys.exit(main())
