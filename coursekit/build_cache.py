"""Reuse a chapter's executed outputs only when nothing that could change them has changed.

    python -m coursekit.build_cache build -- -W -n   # prepare, jupyter-book build, record (make book)
    python -m coursekit.build_cache prepare    # before `jupyter-book build`
    python -m coursekit.build_cache record     # after a build that succeeded
    python -m coursekit.build_cache clear      # forget every executed chapter (make book FORCE=1)
    python -m coursekit.build_cache chapter 02 # one page alone, for an author at work (make chapter)

`make book` runs Jupyter Book with `execute_notebooks: cache`: myst-nb takes a chapter's outputs from
jupyter-cache when a record matches the chapter. jupyter-cache matches on the code cells and the
kernelspec only (jupyter-cache `create_hashed_notebook`; jupyter-book #1633, MyST-NB #621), so on its
own it would serve outputs of an older funml_lib, other data or another seed of the environment.

This module closes that gap with a second key per chapter, the *run key*: the whole notebook without
its markdown (code cells, their metadata, the notebook metadata), the sources of funml_lib, the
versions of every installed distribution, the data the chapters would read, the environment switches
that change outputs, and the device. `prepare` discards each cache record whose run key differs
from the current one (a record without a run key, e.g. from a build that failed half-way, counts as
different) and marks the chapter outdated for Sphinx, so the chapter is executed again; `record`
stores the run key of every record that matches a chapter now. A markdown-only edit leaves both keys
alone: the page is rebuilt from the cached outputs without executing anything.

A fresh clone, or CI, has no cache: everything executes.
"""
from __future__ import annotations

import argparse
import hashlib
import importlib.metadata
import json
import os
import sys
from pathlib import Path

import nbformat

from coursekit.safe_io import atomic_write_text
from coursekit.toc import chapter_notebooks

ROOT = Path(__file__).resolve().parents[1]
CACHE = ROOT / "_build" / ".jupyter_cache"
KEYS_FILE = "funml_run_keys.json"
# Environment variables that change what a chapter prints or draws. Seeds are notebook parameters
# (code cells), so they are in the notebook part of the key.
OUTPUT_SWITCHES = ("FUNML_CLAIMS", "FUNML_CLAIMS_SEED", "FUNML_STATIC", "FUNML_GRADING",
                   "FUNML_OFFLINE", "FUNML_SIMULATE_ONLINE", "FUNML_DATA", "CI",
                   "OMP_NUM_THREADS", "MKL_NUM_THREADS", "CUDA_VISIBLE_DEVICES", "PYTHONHASHSEED")
LIBRARY_SUFFIXES = (".py", ".js", ".css", ".json")


def _digest(*parts: object) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(json.dumps(part, sort_keys=True, default=str).encode())
        h.update(b"\0")
    return h.hexdigest()


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _tree_digest(folder: Path, suffixes: tuple[str, ...] | None = None) -> dict[str, str]:
    """sha256 of every file under `folder` (by relative path); missing folder -> {}."""
    if not folder.is_dir():
        return {}
    return {str(p.relative_to(folder)): _file_digest(p) for p in sorted(folder.rglob("*"))
            if p.is_file() and "__pycache__" not in p.parts
            and (suffixes is None or p.suffix in suffixes)}


def notebook_key(nb: nbformat.NotebookNode) -> str:
    """Everything of a notebook that can change its outputs: code cells with metadata, notebook metadata."""
    code = [(c.source, dict(c.metadata)) for c in nb.cells if c.cell_type == "code"]
    return _digest(code, dict(nb.metadata))


def library_key(library: Path = ROOT / "funml_lib") -> str:
    return _digest(_tree_digest(library, LIBRARY_SUFFIXES))


def packages_key() -> str:
    """Name and version of every installed distribution (torch, numpy, matplotlib, ...)."""
    found = sorted({(d.metadata["Name"] or "").lower(): d.version
                    for d in importlib.metadata.distributions()}.items())
    return _digest(found, sys.version)


def data_key(env: dict[str, str]) -> str:
    """What the chapters would read: the FUNML_DATA folder's files, or torchvision's earlier download."""
    parts: dict[str, object] = {}
    data = env.get("FUNML_DATA")
    if data:
        parts["FUNML_DATA"] = _tree_digest(Path(data).expanduser())
    cache = Path(env.get("FUNML_CACHE") or Path.home() / ".cache" / "funml").expanduser()
    parts["download"] = _tree_digest(cache / "MNIST" / "raw")
    return _digest(parts)


def device_key() -> str:
    import torch  # the chapters' device=None picks CUDA, then MPS, then the CPU

    mps = getattr(torch.backends, "mps", None)
    return _digest(torch.cuda.is_available() and torch.cuda.get_device_name(0),
                   bool(mps and mps.is_available()))


def environment_key(env: dict[str, str] | None = None, library: Path = ROOT / "funml_lib") -> str:
    """Everything outside the notebook that can change a chapter's outputs."""
    env = dict(os.environ if env is None else env)
    switches = {name: env.get(name) for name in OUTPUT_SWITCHES}
    return _digest(switches, library_key(library), packages_key(), data_key(env), device_key())


def run_key(nb: nbformat.NotebookNode, environment: str) -> str:
    return _digest(notebook_key(nb), environment)


def _keys_path(cache_dir: Path) -> Path:
    return cache_dir / KEYS_FILE


def _read_keys(cache_dir: Path) -> dict[str, str]:
    path = _keys_path(cache_dir)
    try:
        keys = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}  # unreadable or damaged: every record counts as unknown, so it re-executes
    if not isinstance(keys, dict) or not all(isinstance(v, str) for v in keys.values()):
        return {}
    return keys


def _matching_record(cache, nb: nbformat.NotebookNode):
    try:
        return cache.match_cache_notebook(nb)
    except KeyError:
        return None


def prepare(chapters: list[Path], cache_dir: Path = CACHE, environment: str | None = None,
            library: Path = ROOT / "funml_lib") -> list[Path]:
    """Discard every cache record whose run key is not the current one; return the chapters to execute.

    A discarded chapter's source gets a new modification time, so Sphinx reads it again (otherwise an
    incremental build would keep its old page although its outputs are gone from the cache).
    """
    if not cache_dir.is_dir():
        # a fresh clone, `clear` (make book FORCE=1) or a deleted cache: everything executes, and
        # Sphinx must read every chapter again, or it keeps the pages of its last build
        for path in chapters:
            os.utime(path)
        return list(chapters)
    from jupyter_cache import get_cache

    cache = get_cache(str(cache_dir))
    environment = environment_key(library=library) if environment is None else environment
    keys, stale = _read_keys(cache_dir), []
    for path in chapters:
        nb = nbformat.read(path, as_version=4)
        record = _matching_record(cache, nb)
        if record is not None and keys.get(str(record.pk)) == run_key(nb, environment):
            continue
        if record is not None:
            cache.remove_cache(record.pk)
            keys.pop(str(record.pk), None)
        stale.append(path)
        os.utime(path)  # Sphinx compares source mtimes with its last build
    atomic_write_text(_keys_path(cache_dir), json.dumps(keys, indent=1, sort_keys=True) + "\n")
    return stale


def record(chapters: list[Path], cache_dir: Path = CACHE, environment: str | None = None,
           library: Path = ROOT / "funml_lib", executed_dir: Path | None = None) -> int:
    """Store the current run key of every cache record that matches a chapter; return how many.

    executed_dir (the build's jupyter_execute folder): each matched chapter's executed notebook is
    written there from the cache. myst-nb writes that copy without outputs when a page is rendered
    from the cache, and the site check and the term edition read the outputs from it.
    """
    if not cache_dir.is_dir():
        return 0
    from jupyter_cache import get_cache

    cache = get_cache(str(cache_dir))
    environment = environment_key(library=library) if environment is None else environment
    keys, done = _read_keys(cache_dir), 0
    for path in chapters:
        nb = nbformat.read(path, as_version=4)
        rec = _matching_record(cache, nb)
        if rec is not None:
            keys[str(rec.pk)] = run_key(nb, environment)
            done += 1
            if executed_dir is not None:
                _, executed = cache.merge_match_into_notebook(nb)
                root = executed_dir.resolve().parents[1]
                target = executed_dir / path.resolve().relative_to(root)
                target.parent.mkdir(parents=True, exist_ok=True)
                atomic_write_text(target, nbformat.writes(executed) + "\n")
    atomic_write_text(_keys_path(cache_dir), json.dumps(keys, indent=1, sort_keys=True) + "\n")
    return done


def clear(cache_dir: Path = CACHE) -> None:
    """Forget every executed chapter (the next build executes everything)."""
    import shutil

    if cache_dir.is_symlink():
        raise SystemExit(f"refusing to delete {cache_dir}: it is a symbolic link")
    shutil.rmtree(cache_dir, ignore_errors=True)


def build_chapter(root: Path, number: str, cache_dir: Path) -> int:
    """Build the chapter whose file name starts with `number` as a page of its own in _build/chapter/.

    It shares the book's execution cache, so it executes only when its run key changed; links to
    other pages and the bibliography are not resolved in a single-page build (no -W here).
    """
    import subprocess

    chapters = [p for p in chapter_notebooks(root) if p.suffix == ".ipynb"]
    found = [p for p in chapters if p.name.startswith(number)]
    if len(found) != 1:
        names = ", ".join(p.name[:2] for p in chapters)
        raise SystemExit(f"NB={number!r} must name one chapter by its number, one of: {names}")
    jb = Path(sys.executable).with_name("jupyter-book")
    out = root / "_build" / "chapter"
    cmd = [str(jb), "build", str(found[0]), "--config", str(root / "_config.yml"),
           "--path-output", str(out)]
    code = subprocess.call(cmd, cwd=root)
    if code == 0:
        record(chapters, cache_dir)
        print(f"chapter page: {out}/_build/_page/{found[0].stem}/html/index.html")
    return code


BIB_FILE = "funml_bib_digest.json"


def bib_files(root: Path) -> list[Path]:
    """The .bib files _config.yml names (bibtex_bibfiles), without walking .venv or node_modules."""
    import yaml

    try:
        config = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8")) or {}
    except (OSError, yaml.YAMLError):
        config = {}
    names = config.get("bibtex_bibfiles") or []
    return sorted(root / name for name in names if isinstance(name, str) and (root / name).is_file())


def touch_citing_pages(root: Path, build_dir: Path) -> list[Path]:
    """When a .bib file changed since the last build, give every page that cites a new mtime.

    sphinxcontrib-bibtex re-reads the .bib and the page with the bibliography, but an incremental
    Sphinx build keeps the other pages, whose citation links carry the entry's text (their title
    tooltips kept the old title). Returns the pages touched.
    """
    from coursekit.toc import existing_sources

    bibs = bib_files(root)
    digest = _digest({str(p.relative_to(root)): _file_digest(p) for p in bibs})
    stamp = build_dir / BIB_FILE
    try:
        old = json.loads(stamp.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        old = None
    touched = []
    if old != digest:
        for page in existing_sources(root):
            if "{cite" in page.read_text(encoding="utf-8", errors="replace"):
                os.utime(page)
                touched.append(page)
    build_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(stamp, json.dumps(digest) + "\n")
    return touched


def build(root: Path, chapters: list[Path], cache_dir: Path, library: Path, jb_args: list[str]) -> int:
    """prepare, `jupyter-book build root *jb_args`, record after success: one process, so a rebuild
    pays the imports of the run key (torch, funml_lib) once, not once before and once after."""
    import subprocess

    touch_citing_pages(root, root / "_build")
    report_prepared(chapters, prepare(chapters, cache_dir, library=library))
    jb = Path(sys.executable).with_name("jupyter-book")
    code = subprocess.call([str(jb), "build", str(root), *jb_args], cwd=root)
    if code == 0:
        report_recorded(record(chapters, cache_dir, library=library,
                               executed_dir=root / "_build" / "jupyter_execute"))
    return code


def report_prepared(chapters: list[Path], stale: list[Path]) -> None:
    names = ", ".join(p.stem for p in stale) or "none"
    print(f"build cache: {len(chapters) - len(stale)} of {len(chapters)} chapters reuse their "
          f"outputs; executing: {names}", flush=True)


def report_recorded(done: int) -> None:
    print(f"build cache: run keys stored for {done} chapters")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursekit.build_cache", description=__doc__.split("\n")[0],
                                     epilog="build: jupyter-book build's options follow `--`, e.g. "
                                            "`build -- -W -n --keep-going`")
    parser.add_argument("command", choices=("build", "prepare", "record", "clear", "chapter"))
    parser.add_argument("number", nargs="?", help="with `chapter`: the chapter's number, e.g. 02")
    parser.add_argument("--root", default=str(ROOT), help="the book's root (with _toc.yml)")
    parser.add_argument("--library", default=str(ROOT / "funml_lib"), help="the library the chapters import")
    parser.add_argument("--cache", default=None, help="jupyter-cache folder (default: ROOT/_build/.jupyter_cache)")
    argv = list(sys.argv[1:] if argv is None else argv)
    # with `build`, what follows `--` goes to jupyter-book build as it is
    jb_args = argv[argv.index("--") + 1:] if "--" in argv else []
    args = parser.parse_args(argv[:argv.index("--")] if "--" in argv else argv)
    args.jb_args = jb_args
    root = Path(args.root)
    cache_dir = Path(args.cache) if args.cache else root / "_build" / ".jupyter_cache"
    if args.command == "clear":
        clear(cache_dir)
        print("build cache cleared: every chapter executes in the next build")
        return 0
    if args.command == "chapter":
        return build_chapter(root, args.number or "", cache_dir)
    chapters = [p for p in chapter_notebooks(root) if p.suffix == ".ipynb"]
    if args.command == "build":
        return build(root, chapters, cache_dir, Path(args.library), args.jb_args)
    if args.command == "prepare":
        report_prepared(chapters, prepare(chapters, cache_dir, library=Path(args.library)))
    else:
        report_recorded(record(chapters, cache_dir, library=Path(args.library),
                               executed_dir=root / "_build" / "jupyter_execute"))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
