"""Read a submitted notebook without running anything, and rebuild it on the source's cells.

    sub = read_submission(source_nb, "course/submitted/ada/02_x/02_x.ipynb")
    sub.answers["ex-sparse-4-answer"]  # the student's code; sub.nb: normalized; sub.notes: warnings

A submission is only a container for the student's answer cells. Everything else comes from the
source notebook: the cells, their order, the locked and tests cells, the metadata and the points.
For each answer cell of the source (nbgrader solution: true) the student's cell with the same
grade_id is taken; when an honest copy-paste duplicated it, the first one (the first answered one
when the first is still the stub). Whatever the file looks
like (invalid or truncated JSON, another nbformat or schema version, deleted, edited or duplicated
cells, changed nbgrader metadata), the result is a notebook and one-line notes, never an exception.
"""
from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import nbformat
from nbformat import NotebookNode

MAX_BYTES = 20 << 20  # a chapter with outputs stays below 5 MB; 50 MB of tiny cells cost 1.6 GB to parse
MISSING = "# (this answer cell is missing from the submission)\n"
_FIELDS = ("grade", "solution", "locked", "points")


@dataclass
class Submission:
    """ok: cells could be read; answers: answer grade_id -> the student's source (answered cells only)."""

    ok: bool
    reason: str = ""
    nb: NotebookNode | None = None
    answers: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)


def _source(cell: dict) -> str:
    src = cell.get("source", cell.get("input", ""))
    if isinstance(src, list):
        src = "".join(s for s in src if isinstance(s, str))
    if not isinstance(src, str):
        return ""
    # a lone surrogate ("\ud800" is valid JSON) cannot be written as UTF-8: the job died writing
    # normalized.ipynb and the student lost every point; it becomes U+FFFD
    return src.encode("utf-16", "surrogatepass").decode("utf-16", "replace")


def _nbgrader(cell: Any) -> dict:
    meta = cell.get("metadata") if isinstance(cell, dict) else None
    nbg = meta.get("nbgrader") if isinstance(meta, dict) else None
    return nbg if isinstance(nbg, dict) else {}


def _raw_cells(data: Any) -> list[dict] | None:
    """The cell dicts of a v4 notebook (or of a v3 one's worksheets); None when there are none."""
    if not isinstance(data, dict):
        return None
    if isinstance(data.get("cells"), list):
        return [c for c in data["cells"] if isinstance(c, dict)]
    sheets = data.get("worksheets")
    if isinstance(sheets, list):
        return [c for s in sheets if isinstance(s, dict) for c in s.get("cells", []) if isinstance(c, dict)]
    return None


def load_cells(path: str | Path) -> tuple[list[dict] | None, str, list[str]]:
    """(cells, reason, notes) of a submitted file; cells is None when nothing can be read."""
    path = Path(path)
    notes: list[str] = []
    try:
        if path.is_symlink():
            return None, "the submission is a symbolic link, not a file", notes
        size = path.stat().st_size
        if size > MAX_BYTES:
            return None, f"the file is {size >> 20} MB, larger than {MAX_BYTES >> 20} MB", notes
        raw = path.read_bytes()
    except OSError as err:
        return None, f"cannot read the file ({err.strerror or err})", notes
    if not raw.strip():
        return None, "the file is empty", notes
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        return None, f"not a notebook (not UTF-8 text at byte {err.start})", notes
    try:
        data = json.loads(text)
    except json.JSONDecodeError as err:
        what = "truncated" if err.pos >= len(text.rstrip()) - 1 else "invalid"
        return None, f"not a notebook: {what} JSON at line {err.lineno}, column {err.colno} ({err.msg})", notes
    except RecursionError:
        return None, "not a notebook: JSON nested too deeply", notes
    cells = _raw_cells(data)
    if cells is None:
        return None, "not a notebook: JSON without cells", notes
    version = data.get("nbformat") if isinstance(data, dict) else None
    if version != 4:
        notes.append(f"nbformat {version!r} (expected 4); its cells were read anyway")
    return cells, "", notes


def read_submission(source: NotebookNode, path: str | Path) -> Submission:
    """Map the submitted file's cells onto `source` by grade_id; see the module docstring."""
    cells, reason, notes = load_cells(path)
    if cells is None:
        return Submission(False, reason=reason, notes=notes)
    by_id: dict[str, list[dict]] = {}
    for cell in cells:
        gid = _nbgrader(cell).get("grade_id")
        if isinstance(gid, str):
            by_id.setdefault(gid, []).append(cell)
    schemas = {_nbgrader(c).get("schema_version") for group in by_id.values() for c in group}
    src_schemas = {_nbgrader(c).get("schema_version") for c in source.cells if _nbgrader(c)}
    if schemas - src_schemas:
        notes.append(f"nbgrader schema_version {sorted(map(str, schemas - src_schemas))} in the "
                     "submission; the source's metadata is used")
    nb = copy.deepcopy(source)
    answers: dict[str, str] = {}
    source_ids = set()
    for cell in nb.cells:
        meta = _nbgrader(cell)
        gid = meta.get("grade_id")
        if not isinstance(gid, str):
            continue
        source_ids.add(gid)
        found = by_id.get(gid, [])
        theirs = found[0] if found else None
        if len(found) > 1:
            # an honest copy-paste where the student wrote in the copy and left the stub above: the
            # first answered copy counts (still one answer: never the best of several)
            answered = [i for i, c in enumerate(found) if "NotImplementedError" not in _source(c)]
            if meta.get("solution") and answered and answered[0] > 0:
                theirs = found[answered[0]]
                notes.append(f"cell {gid} appears {len(found)} times; copy {answered[0] + 1}, the first "
                             "one without the stub's NotImplementedError, is graded")
            else:
                notes.append(f"cell {gid} appears {len(found)} times; the first one is graded")
        if theirs is not None:
            changed = [f"{k} {meta.get(k)!r} -> {_nbgrader(theirs).get(k)!r}" for k in _FIELDS
                       if _nbgrader(theirs).get(k) != meta.get(k)]
            if theirs.get("cell_type") != cell.cell_type:
                changed.append(f"cell type {cell.cell_type} -> {theirs.get('cell_type')!r}")
            if changed:
                notes.append(f"cell {gid}: nbgrader metadata changed ({'; '.join(changed)}); "
                             "the source's is used")
        if meta.get("solution"):
            if theirs is None:
                notes.append(f"answer cell {gid} is missing: its exercise gets 0")
                cell.source = MISSING
            else:
                answers[gid] = cell.source = _source(theirs)
        elif theirs is None:
            notes.append(f"cell {gid} was deleted; restored from the source")
        elif _source(theirs).strip() != cell.source.strip():
            notes.append(f"locked cell {gid} was edited; restored from the source")
    extra = sorted(set(by_id) - source_ids)
    if extra:
        notes.append(f"cells with unknown grade_id ignored: {', '.join(extra[:5])}")
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    return Submission(True, nb=nb, answers=answers, notes=notes)


def write_notebook_text(nb: NotebookNode) -> str:
    """The notebook as text, validated (version 4)."""
    nbformat.validate(nb)
    return nbformat.writes(nb) + "\n"
