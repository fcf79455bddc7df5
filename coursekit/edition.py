"""The term edition: the book as a graded class sees it, with no solution, answer code or hidden test.

    python -m coursekit.edition build      # what `make book EDITION=term` runs after the full build
    python -m coursekit.edition publish    # the student notebooks onto the branch the buttons open
    python -m coursekit.edition check      # leak scan of the built term site and the published notebooks

`build` does not execute the chapters again. It takes the notebooks the full build executed
(_build/jupyter_execute/book/*.ipynb), keeps every cell that the student version keeps unchanged
(with its outputs), drops solution cells, solution explanations and answer cells together with their
outputs, keeps the autograder-tests cells' visible code without outputs (they printed the solution's
values), and writes the result with the other pages to _build/term_src/ with its own _config.yml:
no execution, no `_sources/` copies (so no source download), and the launch buttons on the term
branch. Jupyter Book then builds it into _build/term/html. The student versions come from
coursekit.homework.student_version, which also decides what counts as solution material.

`publish` writes the student version of every chapter into a commit on a local branch (default
`term`) with git plumbing only: a temporary index, `git commit-tree`, `git update-ref`. The working
tree, the index and the current branch are not touched and nothing is pushed: the instructor pushes
(`git push origin term`). The commit is refused if a secret of the chapters is in a student notebook.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import nbformat
import yaml

from coursekit import site_leaks
from coursekit.homework import student_version
from coursekit.markers import EXERCISE_FENCE, SOLUTION_FENCE, nbgrader_metadata, strip_solution_directives
from coursekit.safe_io import NotebookError, atomic_write_text, read_notebook
from coursekit.toc import source_of, toc_entries

BRANCH = "term"
TERM_SRC = Path("_build/term_src")
TERM_HTML = Path("_build/term/html")
EXECUTED = Path("_build/jupyter_execute")
# Pages of _toc.yml that the term edition leaves out: the instructors' notes describe the grading
# (and may quote what it checks); students need none of it.
INSTRUCTOR_PAGES = ("book/instructors",)
WIDGET_VIEW = "application/vnd.jupyter.widget-view+json"
BRANCH_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._/-]{0,99}")


class EditionError(ValueError):
    """The term edition cannot be built or published; the message says what to do."""


GITHUB_REPOSITORY = re.compile(r"https://github\.com/[A-Za-z0-9][\w.-]*/[\w.-]+")


def check_repository(url: str | None) -> str | None:
    """None (keep _config.yml's) or a GitHub repository URL, which the Colab button needs."""
    if url is not None and not (isinstance(url, str) and GITHUB_REPOSITORY.fullmatch(url.rstrip("/"))):
        raise EditionError(f"repository must be a GitHub repository URL such as "
                           f"https://github.com/OWNER/NAME (Colab opens notebooks from GitHub), got {url!r}")
    return url.rstrip("/") if url else None


def check_branch(branch: str) -> str:
    if not isinstance(branch, str) or not BRANCH_NAME.fullmatch(branch) or ".." in branch \
            or branch.endswith((".lock", "/", ".")):
        raise EditionError(f"branch must be a plain git branch name (letters, digits, . _ / -), got {branch!r}")
    return branch


# ----------------------------------------------------------------------------------------------
# One chapter: the executed notebook without its solution material
# ----------------------------------------------------------------------------------------------

def _clean_metadata(cell: nbformat.NotebookNode) -> None:
    cell.metadata.pop("nbgrader", None)
    funml = cell.metadata.get("funml")
    if isinstance(funml, dict):
        funml.pop("rubric", None)
        if not funml:
            cell.metadata.pop("funml")


def _widget_models(outputs: list) -> set[str]:
    return {out["data"][WIDGET_VIEW].get("model_id") for out in outputs
            if out.get("output_type") in ("display_data", "execute_result")
            and isinstance((out.get("data") or {}).get(WIDGET_VIEW), dict)}


def prune_widget_state(nb: nbformat.NotebookNode) -> None:
    """Keep only the saved widget models that the kept outputs display, with every model linked to
    them (children, layouts, jslinks): a dropped solution cell's widgets must not stay in the page."""
    state = (nb.metadata.get("widgets") or {}).get("application/vnd.jupyter.widget-state+json")
    if not isinstance(state, dict) or not isinstance(state.get("state"), dict):
        return
    models = state["state"]
    edges: dict[str, set[str]] = {k: set() for k in models}
    for key, model in models.items():
        for ref in re.findall(r"IPY_MODEL_([\w-]+)", json.dumps(model)):
            if ref in edges:
                edges[key].add(ref)
                edges[ref].add(key)
    todo = [m for c in nb.cells if c.cell_type == "code" for m in _widget_models(c.get("outputs", []))]
    keep: set[str] = set()
    while todo:
        key = todo.pop()
        if key in keep or key not in edges:
            continue
        keep.add(key)
        todo += edges[key]
    state["state"] = {k: v for k, v in models.items() if k in keep}
    if not keep:
        nb.metadata.pop("widgets")


def term_notebook(source: nbformat.NotebookNode, executed: nbformat.NotebookNode,
                  name: str) -> nbformat.NotebookNode:
    """The page of a chapter in the term edition: the executed chapter minus its solution material.

    source: the chapter as written; executed: the same chapter after the full build ran it (its cells
    must be the source's, else the full build is out of date)."""
    src_cells, ex_cells = source.cells, executed.cells
    if len(src_cells) != len(ex_cells) or any(
            a.get("id") != b.get("id") or a.source != b.source for a, b in zip(src_cells, ex_cells)):
        raise EditionError(f"{name}: the executed notebook of the full build is older than the chapter; "
                           "run `make book` (the full edition) first")
    student, _ = student_version(source, name)
    kept = {c.get("id"): c for c in student.cells}
    # markdown cells with an {exercise...} fence that are not solution text (a cell the student
    # version drops only because it turns the exercise directives into headings)
    exercise_ids = {c.get("id") for c in src_cells if c.cell_type == "markdown"
                    and any(EXERCISE_FENCE.match(line) for line in c.source.split("\n"))
                    and "solution" not in c.get("metadata", {}).get("tags", [])
                    and not any(SOLUTION_FENCE.match(line) for line in c.source.split("\n"))}
    cells = []
    for src, ex in zip(src_cells, ex_cells):
        meta = nbgrader_metadata(src)
        exercise = src.get("id") in exercise_ids and not meta
        if not exercise and (src.get("id") not in kept or meta.get("solution")):
            continue  # solution text, gates, answer cells: gone with their outputs
        cell = copy.deepcopy(ex)
        if exercise:  # the page keeps sphinx-exercise's directives (the student version makes headings)
            cell.source = strip_solution_directives(src.source)[0]
        elif src.cell_type == "markdown":
            cell.source = kept[src.get("id")].source
        elif src.cell_type == "code" and (kept[src.get("id")].source != src.source or meta.get("grade")):
            cell.source = kept[src.get("id")].source   # hidden tests out; outputs came from the solution
            cell.outputs, cell.execution_count = [], None
        _clean_metadata(cell)
        cells.append(cell)
    nb = copy.deepcopy(executed)
    nb.cells = cells
    for key in ("funml", "papermill", "celltoolbar"):
        nb.metadata.pop(key, None)
    prune_widget_state(nb)
    nbformat.validate(nb)
    return nb


# ----------------------------------------------------------------------------------------------
# The term source tree and its build
# ----------------------------------------------------------------------------------------------

def term_config(config: dict, back: str, branch: str, repository: str | None) -> dict:
    """_config.yml of the term edition: no execution, no source copies, buttons on `branch`.

    back: the path from the term source folder to the book root (e.g. "../.."), for the files the
    term edition shares with the full one (static files, the Sphinx extension)."""
    cfg = copy.deepcopy(config)
    cfg.setdefault("execute", {})["execute_notebooks"] = "off"
    repo = cfg.setdefault("repository", {})
    repo["branch"] = branch
    if repository:
        repo["url"] = repository
    html = cfg.setdefault("html", {})
    for key in ("favicon",):
        if html.get(key):
            html[key] = f"{back}/{html[key]}"
    if cfg.get("logo"):
        cfg["logo"] = f"{back}/{cfg['logo']}"
    sphinx = cfg.setdefault("sphinx", {})
    sphinx["local_extensions"] = {name: f"{back}/{path}"
                                  for name, path in (sphinx.get("local_extensions") or {}).items()}
    conf = sphinx.setdefault("config", {})
    conf["html_static_path"] = [f"{back}/{p}" for p in conf.get("html_static_path", [])]
    conf["html_copy_source"] = False       # no _sources/: nothing to download but the student notebook
    conf["html_show_sourcelink"] = False
    conf["funml_edition"] = "term"         # book/_ext/funml_site.py: no download button, branch links
    return cfg


def term_toc(toc: dict) -> dict:
    """_toc.yml without the instructors' pages (a part left empty goes too)."""
    toc = copy.deepcopy(toc)

    def keep(entries: list) -> list:
        return [e for e in entries if not (isinstance(e, dict) and e.get("file") in INSTRUCTOR_PAGES)]

    if toc.get("chapters"):
        toc["chapters"] = keep(toc["chapters"])
    if toc.get("parts"):
        parts = [{**p, "chapters": keep(p.get("chapters") or [])} for p in toc["parts"]]
        toc["parts"] = [p for p in parts if p["chapters"]]
    return toc


def write_term_source(root: Path, out: Path, executed_dir: Path, branch: str,
                      repository: str | None = None) -> list[Path]:
    """Write the term edition's source tree to `out` (replaced as a whole); return the pages written."""
    root, out = Path(root).resolve(), Path(out).resolve()
    if root == out or out in root.parents or (root / "book") in [out, *out.parents]:
        raise EditionError(f"out must be a folder of its own under the book root, not {out}")
    toc = root / "_toc.yml"
    pages: list[tuple[Path, str]] = []
    for entry in toc_entries(toc):
        if entry.docname in INSTRUCTOR_PAGES:
            continue
        path = source_of(root, entry.docname)
        if path is None:
            raise EditionError(f"_toc.yml lists {entry.docname}, but there is no such source file in {root}")
        rel = path.relative_to(root)
        if path.suffix == ".ipynb":
            executed = executed_dir / rel
            if not executed.is_file():
                raise EditionError(f"no executed notebook {executed}: run `make book` (the full edition) first")
            nb = term_notebook(read_notebook(path), read_notebook(executed), str(rel))
            pages.append((rel, nbformat.writes(nb) + "\n"))
        else:
            pages.append((rel, path.read_text(encoding="utf-8")))
    config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    for bib in config.get("bibtex_bibfiles") or []:
        pages.append((Path(bib), (root / bib).read_text(encoding="utf-8")))
    back = os.path.relpath(root, out)
    cfg = term_config(config, back, branch, repository)
    pages.append((Path("_config.yml"), "# Generated by coursekit.edition from ../../_config.yml: do not edit.\n"
                  + yaml.safe_dump(cfg, sort_keys=False)))
    pages.append((Path("_toc.yml"), "# Generated by coursekit.edition from ../../_toc.yml: do not edit.\n"
                  + yaml.safe_dump(term_toc(yaml.safe_load(toc.read_text(encoding="utf-8"))), sort_keys=False)))

    out.parent.mkdir(parents=True, exist_ok=True)
    fresh = Path(tempfile.mkdtemp(prefix=out.name + ".", dir=out.parent))   # same file system: os.replace
    for rel, text in pages:
        (fresh / rel).parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(fresh / rel, text)
    if out.is_symlink() or out.is_file():
        raise EditionError(f"{out} is a link or a file; refusing to replace it")
    old = None
    if out.exists():
        old = out.with_name(out.name + ".old")
        shutil.rmtree(old, ignore_errors=True)
        os.replace(out, old)
    os.replace(fresh, out)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
    return [out / rel for rel, _ in pages]


def build(root: Path, branch: str = BRANCH, repository: str | None = None, strict: bool = True) -> int:
    """Term source tree + Jupyter Book build into _build/term/html; returns the build's exit status."""
    start = time.monotonic()
    src, html = root / TERM_SRC, root / TERM_HTML
    write_term_source(root, src, root / EXECUTED, check_branch(branch), check_repository(repository))
    from jupyter_book.sphinx import build_sphinx

    # A fresh site each time: a page left from an earlier build (an instructors' page, a renamed
    # chapter) would otherwise stay in the folder that is published.
    for old in (html, html.parent / ".doctrees"):
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old)

    # As `jupyter-book build -W -n --keep-going` does it, but into _build/term/html (its doctrees next to it).
    result = build_sphinx(str(src), str(html), noconfig=True, path_config=str(src / "_config.yml"),
                          confoverrides={"external_toc_path": (src / "_toc.yml").as_posix(), "nitpicky": True,
                                         "latex_individualpages": False},
                          warningiserror=strict, keep_going=strict, quiet=True)
    if isinstance(result, Exception):
        print(f"term edition: the build failed: {result}", file=sys.stderr)
        return 1
    print(f"term edition: {html / 'index.html'} in {time.monotonic() - start:.0f} s "
          f"(launch buttons on branch {branch!r}; `python -m coursekit.edition publish` fills it)")
    return int(result)


# ----------------------------------------------------------------------------------------------
# Publishing the student notebooks on a branch, with git plumbing only
# ----------------------------------------------------------------------------------------------

def _git(root: Path, *args: str, env: dict | None = None, stdin: str | None = None) -> str:
    done = subprocess.run(["git", "-C", str(root), *args], input=stdin, capture_output=True, text=True,
                          env={**os.environ, **(env or {})})
    if done.returncode:
        raise EditionError(f"git {' '.join(args[:2])} failed: {done.stderr.strip()[:300]}")
    return done.stdout.strip()


STUDENT_README = """# Student notebooks of the term edition

Generated by `python -m coursekit.edition publish` from commit {source} of the book's main branch.
Each chapter is its student version: the exercises without their solutions. Open a chapter in
Colab from the term edition's pages, or here with Colab's "GitHub" tab. Do not edit this branch:
the next publish replaces it.
"""


def student_files(root: Path) -> dict[str, str]:
    """{path in the branch: text}: every chapter's student version, the other pages, _toc.yml, a README."""
    files: dict[str, str] = {}
    for entry in toc_entries(root / "_toc.yml"):
        if entry.docname in INSTRUCTOR_PAGES:
            continue
        path = source_of(root, entry.docname)
        if path is None:
            raise EditionError(f"_toc.yml lists {entry.docname}, but there is no such source file in {root}")
        rel = path.relative_to(root).as_posix()
        if path.suffix == ".ipynb":
            nb, _ = student_version(read_notebook(path), rel)
            files[rel] = nbformat.writes(nb) + "\n"
        else:
            files[rel] = path.read_text(encoding="utf-8")
    files["_toc.yml"] = yaml.safe_dump(term_toc(yaml.safe_load((root / "_toc.yml").read_text(encoding="utf-8"))),
                                       sort_keys=False)
    source = _git(root, "rev-parse", "--short", "HEAD")
    dirty = _git(root, "status", "--porcelain", "--", "book", "_toc.yml")
    files["README.md"] = STUDENT_README.format(source=source + (" (with uncommitted changes)" if dirty else ""))
    return files


def publish(root: Path, branch: str = BRANCH) -> str:
    """Commit the student notebooks onto `branch` (created if missing); return the commit id.

    Refuses when a secret of the chapters is found in a student file (coursekit.site_leaks)."""
    root = Path(root).resolve()
    check_branch(branch)
    files = student_files(root)
    leaks = site_leaks.scan_notebooks(files, site_leaks.collect_secrets(root))
    if leaks:
        raise EditionError("not published, solution material in the student files:\n  " + "\n  ".join(leaks))
    with tempfile.TemporaryDirectory() as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}  # never the repository's own index
        for name, text in sorted(files.items()):
            blob = _git(root, "hash-object", "-w", "--stdin", stdin=text)
            _git(root, "update-index", "--add", "--cacheinfo", f"100644,{blob},{name}", env=env)
        tree = _git(root, "write-tree", env=env)
    ref = f"refs/heads/{branch}"
    try:
        parent = _git(root, "rev-parse", "--verify", "-q", ref + "^{commit}")
    except EditionError:
        parent = ""
    if parent and _git(root, "rev-parse", parent + "^{tree}") == tree:
        print(f"{branch}: already up to date ({parent[:10]})")
        return parent
    message = f"Student notebooks of the term edition, from {_git(root, 'rev-parse', '--short', 'HEAD')}"
    # A CI machine may have no git identity; the commit is then signed by the tool itself.
    who = {} if subprocess.run(["git", "-C", str(root), "config", "user.email"], capture_output=True).stdout.strip() \
        else {f"GIT_{role}_{key}": value for role in ("AUTHOR", "COMMITTER")
              for key, value in (("NAME", "coursekit.edition"), ("EMAIL", "coursekit@localhost"))}
    commit = _git(root, "commit-tree", tree, *(["-p", parent] if parent else []), "-m", message, env=who)
    _git(root, "update-ref", "-m", "coursekit.edition publish", ref, commit, parent or "0" * 40)
    print(f"{branch}: {commit[:10]} with {len(files)} files; push it with `git push origin {branch}`")
    return commit


def published_notebooks(root: Path, branch: str = BRANCH) -> dict[str, str]:
    """{branch:path: text} of the notebooks on the published branch (what the Colab buttons open)."""
    names = _git(root, "ls-tree", "-r", "--name-only", check_branch(branch)).split("\n")
    return {f"{branch}:{n}": _git(root, "show", f"{branch}:{n}") for n in names if n.endswith(".ipynb")}


# ----------------------------------------------------------------------------------------------
# The leak check of a built term edition
# ----------------------------------------------------------------------------------------------

def term_problems(root: Path, html: Path | None = None, branch: str | None = None) -> list[str]:
    """Every secret of the chapters found in the built term site or on the published branch, and
    every harness marker shown on its pages; empty when nothing leaks."""
    root = Path(root).resolve()
    html = Path(html or root / TERM_HTML)
    if not (html / "index.html").is_file():
        return [f"{html}: no built term edition (run `make book EDITION=term`)"]
    config = yaml.safe_load((root / TERM_SRC / "_config.yml").read_text(encoding="utf-8")) \
        if (root / TERM_SRC / "_config.yml").is_file() else {}
    branch = branch or (config.get("repository") or {}).get("branch") or BRANCH
    secrets = site_leaks.collect_secrets(root, root / EXECUTED)
    problems = site_leaks.scan_site(html, secrets) + site_leaks.marker_problems(html)
    if (html / "_sources").exists():
        problems.append(f"{html / '_sources'}: the term edition must not copy its sources")
    try:
        notebooks = published_notebooks(root, branch)
    except EditionError:
        notebooks = {}
    if not notebooks:
        problems.append(f"no notebooks on branch {branch!r}, which the launch buttons open "
                        "(run `python -m coursekit.edition publish`)")
    problems += site_leaks.scan_notebooks(notebooks, secrets)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursekit.edition", description=__doc__.split("\n")[0])
    parser.add_argument("command", choices=["build", "publish", "check"])
    parser.add_argument("--root", type=Path, default=Path("."), help="book root (holds _toc.yml)")
    parser.add_argument("--branch", default=BRANCH, help="branch of the student notebooks (default: term)")
    parser.add_argument("--repository", default=None,
                        help="repository URL the term edition's buttons open (default: _config.yml's)")
    args = parser.parse_args(argv)
    root = args.root.resolve()
    try:
        if args.command == "build":
            return build(root, args.branch, args.repository)
        if args.command == "publish":
            publish(root, args.branch)
            return 0
        problems = term_problems(root, branch=args.branch)
    except (EditionError, NotebookError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for problem in problems:
        print(f"LEAK {problem}")
    print(f"term edition leak check: {len(problems)} problems")
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
