"""The one reader of the book's `_toc.yml`: which pages exist, in reading order."""
from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import yaml

SUFFIXES = (".ipynb", ".md", ".rst")


class TocError(ValueError):
    """_toc.yml is unreadable or lists a page whose source file does not exist (the message names the toc and the path)."""


@dataclass(frozen=True)
class TocEntry:
    """One page: its docname (path from the book root, no suffix) and whether its part is numbered."""

    docname: str
    numbered: bool


def toc_entries(toc_file: str | Path) -> list[TocEntry]:
    """Every page of a jupyter-book `_toc.yml` (root first), in reading order."""
    toc_file = Path(toc_file)
    try:
        toc = yaml.safe_load(toc_file.read_text(encoding="utf-8")) or {}
    except yaml.YAMLError as err:
        raise TocError(f"{toc_file} is not valid YAML: {err}") from None
    if not isinstance(toc, dict):
        raise ValueError(f"{toc_file}: a table of contents must be a mapping, got {type(toc).__name__}")
    entries: list[TocEntry] = []

    def add(entry: object, numbered: bool) -> None:
        if not isinstance(entry, dict):
            return
        if isinstance(entry.get("file"), str):
            entries.append(TocEntry(re.sub(r"\.(ipynb|md|rst)$", "", entry["file"]), numbered))
        for key in ("chapters", "sections"):
            for child in entry.get(key) or []:
                add(child, numbered)

    if isinstance(toc.get("root"), str):
        add({"file": toc["root"]}, False)
    for part in toc.get("parts") or []:
        add(part, bool(part.get("numbered", False)) if isinstance(part, dict) else False)
    add({"chapters": toc.get("chapters") or []}, bool((toc.get("defaults") or {}).get("numbered", False)))
    return entries


def source_of(root: str | Path, docname: str) -> Path | None:
    """The source file of a docname (.ipynb, .md or .rst), or None when there is none."""
    for suffix in SUFFIXES:
        path = Path(root) / (docname + suffix)
        if path.is_file():
            return path
    return None


def existing_sources(root: str | Path, toc_file: str | Path | None = None) -> list[Path]:
    """The source file of every page the toc lists, in reading order; a page without one is a TocError.

    A missing chapter is never skipped: a book, a course or a set of student versions built without it
    would look complete and exit 0.
    """
    root = Path(root)
    toc_file = Path(toc_file) if toc_file is not None else root / "_toc.yml"
    sources, missing = [], []
    for e in toc_entries(toc_file):
        path = source_of(root, e.docname)
        if path is None:
            missing.append(str(root / e.docname) + "{" + ",".join(SUFFIXES) + "}")
        else:
            sources.append(path)
    if missing:
        raise TocError(f"{toc_file} lists {len(missing)} page(s) with no source file: {', '.join(missing)}; "
                       "restore the file or remove its entry from the toc")
    return sources


def chapter_notebooks(root: str | Path, toc_file: str | Path | None = None) -> list[Path]:
    """The notebook chapters the toc lists, in reading order (pages that are .md are left out).

    Every page the toc lists must exist (TocError naming the path otherwise).
    """
    return [p for p in existing_sources(root, toc_file) if p.suffix == ".ipynb"]
