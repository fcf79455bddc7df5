"""Reading chapters and writing generated files without ever losing what was there.

- `read_notebook(path)`: a version-4 notebook, or a `NotebookError` naming the file (empty, not JSON,
  nbformat 3, not a notebook);
- `check_output_dir(src, out)`: refuses an output folder that is, contains or lies inside the source
  folder, however spelled (`book/.`, `./book`, a symlink, a bind mount), or that is a file;
- `atomic_write_text(path, text)`: a temporary file in the same folder, flushed and fsynced, then
  `os.replace`d over the target; a symlink or folder at the target is refused, never written through.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from funml_lib.atomic import atomic_write


class NotebookError(ValueError):
    """A notebook or an output location cannot be used; the message names the file (and cell)."""


def read_notebook(path: str | Path) -> NotebookNode:
    """Read a version-4 notebook; every problem becomes a NotebookError that names `path`."""
    path = Path(path)
    try:
        raw = path.read_bytes()
    except OSError as err:
        raise NotebookError(f"{path}: cannot read it ({err.strerror or err})") from err
    if not raw.strip():
        raise NotebookError(f"{path}: the file is empty, not a notebook")
    try:
        data = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError as err:
        raise NotebookError(f"{path}: not a notebook (not UTF-8 text: {err.reason} at byte {err.start})") from err
    except json.JSONDecodeError as err:
        raise NotebookError(f"{path}: not a notebook, malformed JSON at line {err.lineno}, column "
                            f"{err.colno}: {err.msg}") from err
    if not isinstance(data, dict) or "cells" not in data and "worksheets" not in data:
        raise NotebookError(f"{path}: not a notebook (JSON without cells)")
    version = data.get("nbformat")
    if version != 4:
        raise NotebookError(f"{path}: nbformat {version} notebook; this tool reads version 4 only. Convert "
                            f"it with: jupyter nbconvert --to notebook --nbformat 4 --inplace {path}")
    try:
        nb = nbformat.reads(raw.decode("utf-8"), as_version=4)
        nbformat.validate(nb)
    except Exception as err:  # nbformat's ValidationError and friends
        first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise NotebookError(f"{path}: not a valid version-4 notebook: {first}") from err
    return nb


def _same_file(a: Path, b: Path) -> bool:
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def _existing_ancestors(path: Path) -> list[Path]:
    """path and its parents that exist, innermost first."""
    return [p for p in (path, *path.parents) if p.exists()]


def check_output_dir(src: str | Path, out: str | Path, what: str = "output folder") -> Path:
    """Return `out` as an absolute path after refusing any location that could overwrite `src`.

    Refused: `out` is `src` (also spelled differently or reached through a symlink or a bind mount),
    lies inside it, or contains it; `out` (or one of its parents) is a file.
    """
    src, out = Path(src), Path(os.path.abspath(out))
    src_real = src.resolve()
    out_real = out.resolve()  # follows every symlink of the part that exists
    for p in (out, *out.parents):
        if p.exists() and not p.is_dir():
            raise NotebookError(f"{what} {out}: {p} is a file, not a folder")
    inside = any(_same_file(p, src_real) for p in _existing_ancestors(out_real))
    inside = inside or out_real == src_real or src_real in out_real.parents
    if inside:
        raise NotebookError(f"{what} {out} is the source folder {src} or lies inside it: that would "
                            "overwrite the chapters; choose a folder outside it")
    if out_real in src_real.parents or any(_same_file(p, out_real) for p in _existing_ancestors(src_real)):
        raise NotebookError(f"{what} {out} contains the source folder {src}; choose a folder outside it")
    return out


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write `text` to `path` atomically (temp file in the same folder, fsync, os.replace).

    A symlink or a folder at `path` is refused: nothing is ever written through a link onto a file
    this tool did not create. On any failure the previous file is left as it was and no temporary
    file remains.
    """
    path = Path(path)
    if path.is_symlink():
        raise NotebookError(f"{path} is a symbolic link (to {os.readlink(path)}); refusing to write "
                            "through it: remove the link or choose another output folder")
    if path.exists() and not path.is_file():
        raise NotebookError(f"{path} exists and is not a regular file; refusing to replace it")
    atomic_write(path, lambda f: f.write(text.encode("utf-8")))
    return path


def make_dirs(folder: Path, src: Path) -> None:
    """mkdir -p `folder`, then refuse it if (through a symlinked part) it lands inside `src`."""
    for p in (folder, *folder.parents):
        if p.exists() and not p.is_dir():
            raise NotebookError(f"cannot create folder {folder}: {p} is a file")
    folder.mkdir(parents=True, exist_ok=True)
    real, src_real = folder.resolve(), src.resolve()
    if real == src_real or src_real in real.parents:
        raise NotebookError(f"{folder} leads into the source folder {src} (through a symbolic link); "
                            "refusing to write there")
