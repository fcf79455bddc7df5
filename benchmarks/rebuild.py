"""Cold build against a rebuild after a prose-only edit, measured in one run.

    .venv/bin/python benchmarks/rebuild.py            # or: make bench-rebuild

1. `make book FORCE=1`: every chapter executes (what a fresh clone or CI does);
2. one sentence is added to a markdown cell of a chapter, then `make book` again: no code changed, so
   every chapter's outputs come from the build cache (coursekit/build_cache.py) and only the edited
   page is rendered again.
It prints both times and their ratio (target: the rebuild at least 10x faster), then restores the
chapter byte for byte and checks that the edited sentence reached the page.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import nbformat

ROOT = Path(__file__).resolve().parents[1]
MARK = "This sentence was added by benchmarks/rebuild.py."


def make_book(*extra: str) -> float:
    start = time.perf_counter()
    subprocess.run(["make", "book", *extra], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chapter", default="book/02_sparse_autoencoders.ipynb",
                        help="the chapter whose prose is edited (default: %(default)s)")
    args = parser.parse_args(argv)
    chapter = ROOT / args.chapter
    original = chapter.read_bytes()
    cold = make_book("FORCE=1")
    try:
        nb = nbformat.reads(original.decode("utf-8"), as_version=4)
        cell = next(c for c in nb.cells if c.cell_type == "markdown" and c.source.startswith("#"))
        cell.source += f"\n\n{MARK}"
        tmp = chapter.with_name(f".{chapter.name}.bench")
        tmp.write_text(nbformat.writes(nb) + "\n", encoding="utf-8")
        os.replace(tmp, chapter)
        warm = make_book()
    finally:
        tmp = chapter.with_name(f".{chapter.name}.restore")
        tmp.write_bytes(original)
        os.replace(tmp, chapter)
    page = ROOT / "_build" / "html" / "book" / f"{chapter.stem}.html"
    if MARK not in page.read_text(encoding="utf-8"):
        print(f"error: the edited sentence is not on {page.name}", file=sys.stderr)
        return 1
    print(f"cold build (every chapter executes): {cold:7.1f} s")
    print(f"after a prose-only edit:             {warm:7.1f} s")
    print(f"ratio: {cold / warm:.1f}x (target >= 10x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
