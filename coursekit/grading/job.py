"""Grade one submission: a self-contained job (submission in, scores JSON and a notebook out).

    python -m coursekit.grading.job SOURCE SUBMISSION OUT_DIR [--secret-file F] [--no-display]

SOURCE is the chapter as released to students (course/release/<chapter>/<chapter>.ipynb, what
`coursekit.course autograde` passes: every cell but the answers is copied from it into the graded
notebook, so solution explanations never reach feedback; the course's source notebook works too, for
a quick check, but then its explanations end up in normalized.ipynb), SUBMISSION the
student's file (course/submitted/<student>/<chapter>/<chapter>.ipynb). The job writes, atomically,
OUT_DIR/scores.json and OUT_DIR/normalized.ipynb (the submission with its locked cells restored
from the source, and, with display on, the outputs of a sandboxed run for the hand grader).
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path
from typing import Any

import nbformat

from coursekit.grading import functions, numbers, sandbox
from coursekit.grading.sandbox import Limits
from coursekit.grading.submission import read_submission, write_notebook_text

__all__ = ["grade_submission", "Limits", "DISPLAY_LIMITS"]

# The display run executes a whole (shrunk) chapter: more time and memory than a function probe.
DISPLAY_LIMITS = Limits(wall_s=600, cpu_s=600, memory_mb=8192, processes=128, result_bytes=20_000_000)
MAX_OUTPUT_CHARS = 100_000  # per cell, in the normalized notebook


def _student(path: Path) -> str:
    """The student's id from .../submitted/<student>/<chapter>/<file> (else the grandparent folder)."""
    parts = path.parts
    if len(parts) >= 4 and parts[-4] == "submitted":  # a student whose id is "submitted" too
        return parts[-3]
    if "submitted" in parts:
        i = len(parts) - 1 - parts[::-1].index("submitted")
        if i + 1 < len(parts) - 1:
            return parts[i + 1]
    return path.parent.parent.name or "?"


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
    except OSError:
        return ""
    return h.hexdigest()


def _graded_cells(source: nbformat.NotebookNode) -> list[tuple[str, float]]:
    """(grade_id, points) of the source's autograded tests cells (grade, not solution)."""
    out = []
    for cell in source.cells:
        meta = cell.get("metadata", {}).get("nbgrader", {})
        if meta.get("grade") and not meta.get("solution") and isinstance(meta.get("grade_id"), str):
            out.append((meta["grade_id"], float(meta.get("points", 0) or 0)))
    return out


def _answer_id(tests_id: str) -> str:
    return (tests_id[: -len("-tests")] if tests_id.endswith("-tests") else tests_id) + "-answer"


def _hidden_paths(source: Path, submission: Path, out_dir: Path) -> list[str]:
    """Folders the sandbox must not see: the course (sources, gradebook, every submission), the output."""
    hide = {source.resolve().parent, submission.resolve().parent, out_dir.resolve()}
    for p in (source.resolve(), submission.resolve()):
        parts = p.parts
        for marker in ("source", "submitted", "autograded", "release", "feedback"):
            if marker in parts[:-1]:
                i = len(parts) - 1 - parts[::-1].index(marker)
                hide.add(Path(*parts[:i]))
    return sorted(str(h) for h in hide)


def grade_submission(source_nb: str | Path, submission_path: str | Path, out_dir: str | Path, *,
                     secret: str, limits: Limits | None = None, display: bool = True) -> dict:
    """Grade one submission; write OUT_DIR/scores.json and OUT_DIR/normalized.ipynb; return the scores.

    source_nb: the released notebook (the reference for cells, metadata and points; see above);
    submission_path: the submitted notebook, .../submitted/<student>/<chapter>/<file>.ipynb (the
    student's name is read from the path); out_dir: created if missing; secret: the course's secret
    string (the hidden inputs of the function probes derive from it; keep it out of student hands);
    limits: per-sandbox limits of the function probes (Limits() when None); display: also execute
    the normalized notebook in the sandbox (funml_lib readable, FUNML_GRADING=1) for the hand
    grader's view -- its outputs never decide points.

    Returns (and writes as scores.json) a dict:
        {"chapter": str, "student": str, "sha256": str (of the submitted file), "ok": bool,
         "reason": str (one line naming the student; "" when ok),
         "tests": {tests_grade_id: {"points": float, "max": float, "message": str}},
         "notes": [str, ...] (tampering warnings, display-run problems),
         "seconds": {"wall": float, "cpu": float}}
    Never raises for anything wrong with the submission (ok=False with a reason, every test 0);
    raises ValueError/TypeError for bad arguments of the grader itself (e.g. an unreadable source).
    """
    from coursekit.safe_io import read_notebook

    if not isinstance(secret, str) or not secret:
        raise ValueError("secret must be a non-empty string (the course's grading secret)")
    limits = Limits() if limits is None else limits
    if not isinstance(limits, Limits):
        raise TypeError(f"limits must be a Limits, got {type(limits).__name__}")
    source_nb, submission_path, out_dir = Path(source_nb), Path(submission_path), Path(out_dir)
    source = read_notebook(source_nb)  # the grader's own file: a problem here is an error
    start, cpu0 = time.monotonic(), time.process_time()
    student, chapter = _student(submission_path), source_nb.stem
    graded = _graded_cells(source)
    scores: dict[str, Any] = {
        "chapter": chapter, "student": student, "sha256": _sha256(submission_path), "ok": True,
        "reason": "", "tests": {gid: {"points": 0.0, "max": pts, "message": ""} for gid, pts in graded},
        "notes": [], "seconds": {"wall": 0.0, "cpu": 0.0}}
    sub = read_submission(source, submission_path)
    scores["notes"] += sub.notes
    hide = _hidden_paths(source_nb, submission_path, out_dir)
    sandbox_cpu = 0.0
    if not sub.ok:
        scores.update(ok=False, reason=f"{student}: {chapter}: {sub.reason}; every test scores 0")
        for entry in scores["tests"].values():
            entry["message"] = f"submission not readable: {sub.reason}"
    else:
        table = numbers.chapter_numbers(source_nb)
        probes = []
        for gid, pts in graded:
            entry = scores["tests"][gid]
            code = sub.answers.get(_answer_id(gid))
            if gid in table:
                entry["points"], entry["message"] = numbers.grade_numbers(code, table[gid], pts)
            elif gid in functions.PROBES:
                if code is None:
                    entry["message"] = "the answer cell is missing"
                else:
                    probes.append((gid, code))
            else:
                entry["message"] = "no automatic check for this cell: grade it by hand"
        sandbox_cpu += _run_probes(probes, scores, secret, limits, hide)
        if display:
            sandbox_cpu += _display(sub.nb, scores, hide)
    scores["seconds"] = {"wall": round(time.monotonic() - start, 3),
                         "cpu": round(time.process_time() - cpu0 + sandbox_cpu, 3)}
    _write(out_dir, scores, sub.nb)
    return scores


def _run_probes(probes: list[tuple[str, str]], scores: dict, secret: str, limits: Limits,
                hide: list[str]) -> float:
    """All function exercises of the submission in one sandbox; each alone again if that run fails."""
    if not probes:
        return 0.0
    calls = {gid: functions.make_calls(gid, secret) for gid, _ in probes}
    seed = int(hashlib.sha256(secret.encode()).hexdigest()[:8], 16)

    def run(batch: list[tuple[str, str]]) -> sandbox.SandboxResult:
        payload = {"exercises": [functions.payload_for(gid, calls[gid], code, seed)
                                 for gid, code in batch]}
        return sandbox.run("", functions.HARNESS, payload, limits=limits, hide=hide)

    def reply(result: sandbox.SandboxResult, gid: str) -> Any:
        return result.value.get(gid) if result.ok and isinstance(result.value, dict) else None

    result = run(probes)
    cpu = result.cpu_s
    replies = {gid: reply(result, gid) for gid, _ in probes}
    failed = {gid: result.reason for gid, _ in probes} if not result.ok else {}
    if not result.ok and len(probes) > 1:  # one runaway answer must not cost the others their points
        failed = {}
        for gid, code in probes:
            single = run([(gid, code)])
            cpu += single.cpu_s
            replies[gid] = reply(single, gid)
            if not single.ok:
                failed[gid] = single.reason
    for gid, _ in probes:
        entry = scores["tests"][gid]
        if replies[gid] is None:
            entry["points"] = 0.0
            entry["message"] = f"{functions.PROBES[gid][1]}: {failed.get(gid) or 'no result came back'}"
        else:
            entry["points"], entry["message"] = functions.judge(gid, calls[gid], replies[gid], entry["max"])
    return cpu


DISPLAY_HARNESS = r'''
import threading, time

def main(code, payload):
    import nbformat
    from nbclient import NotebookClient
    from jupyter_client.manager import KernelManager
    nb = nbformat.reads(code, as_version=4)
    km = KernelManager(kernel_name="python3", transport="ipc")  # unix sockets: no network needed
    client = NotebookClient(nb, km=km, timeout=payload["cell_timeout"], allow_errors=True,
                            kernel_name="python3")
    errors = []

    def execute():
        try:
            client.execute()
        except BaseException as err:
            errors.append(("%s: %s" % (type(err).__name__, err))[:300])
    worker = threading.Thread(target=execute, daemon=True)
    worker.start()
    # a watchdog: nbclient can wait forever on a kernel that died (os._exit in a cell)
    deadline, started = time.monotonic() + payload["total_timeout"], False
    while worker.is_alive():
        worker.join(0.5)
        process = getattr(getattr(km, "provisioner", None), "process", None)
        started = started or process is not None
        if started and (process is None or process.poll() is not None):
            worker.join(5)
            if worker.is_alive():
                errors.append("DeadKernelError: the kernel died")
            break
        if time.monotonic() > deadline:
            errors.append("stopped after %d s" % payload["total_timeout"])
            break
    return {"outputs": [list(c.get("outputs", [])) if c.cell_type == "code" else [] for c in nb.cells],
            "counts": [c.get("execution_count") if c.cell_type == "code" else None for c in nb.cells],
            "error": errors[0] if errors else ""}
'''


def _display(nb: nbformat.NotebookNode, scores: dict, hide: list[str]) -> float:
    """Run the normalized notebook in the sandbox (library readable); merge outputs; notes only."""
    env = {"FUNML_GRADING": "1", "FUNML_CLAIMS": "skip"}
    if os.environ.get("FUNML_DATA"):
        env["FUNML_DATA"] = os.environ["FUNML_DATA"]
    payload = {"cell_timeout": 120, "total_timeout": int(DISPLAY_LIMITS.wall_s) - 30}
    result = sandbox.run(nbformat.writes(nb), DISPLAY_HARNESS, payload,
                         limits=DISPLAY_LIMITS, allow_library=True, hide=hide, env=env)
    if not result.ok or not isinstance(result.value, dict):
        scores["notes"].append(f"display run (no effect on points): {result.reason}")
        return result.cpu_s
    value = result.value
    if value.get("error"):
        scores["notes"].append(f"display run (no effect on points): {' '.join(str(value['error']).split())}")
    outputs, counts = value.get("outputs"), value.get("counts")
    if not isinstance(outputs, list) or not isinstance(counts, list) or len(outputs) != len(nb.cells):
        scores["notes"].append("display run (no effect on points): its outputs did not match the cells")
        return result.cpu_s
    for cell, outs, count in zip(nb.cells, outputs, counts):
        if cell.cell_type == "code" and isinstance(outs, list):
            cell.outputs = _safe_outputs(outs)
            cell.execution_count = count if isinstance(count, int) and not isinstance(count, bool) else None
    return result.cpu_s


# MIME types of the display run that nbgrader's formgrader and feedback (nbconvert HTML, not
# sanitized) may show: text/html, SVG, Markdown and JavaScript outputs of student code would run as
# script in the hand grader's browser, logged in to the gradebook; IPython sends text/plain with them
SAFE_MIME = ("text/plain", "image/png", "image/jpeg")


def _safe_outputs(outs: list) -> list:
    """Outputs that pass nbformat's schema, cut after MAX_OUTPUT_CHARS; anything else is dropped.

    Rich outputs keep only SAFE_MIME (one with none of them left is dropped).
    """
    kept, size = [], 0
    for out in outs:
        if isinstance(out, dict) and isinstance(out.get("data"), dict):
            data = {k: v for k, v in out["data"].items() if k in SAFE_MIME}
            if not data:
                continue
            out = {**out, "data": data,
                   "metadata": {k: v for k, v in (out.get("metadata") or {}).items() if k in data}
                   if isinstance(out.get("metadata"), dict) else {}}
        try:
            node = nbformat.from_dict(out)
            probe = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(outputs=[node])])
            nbformat.validate(probe)
            size += len(json.dumps(out))
        except Exception:  # a malformed output is not shown
            continue
        if size > MAX_OUTPUT_CHARS:
            kept.append(nbformat.v4.new_output("stream", name="stdout", text="[output cut]\n"))
            break
        kept.append(node)
    return kept


def _write(out_dir: Path, scores: dict, nb: nbformat.NotebookNode | None) -> None:
    from coursekit.safe_io import atomic_write_text

    out_dir.mkdir(parents=True, exist_ok=True)
    if nb is not None:
        atomic_write_text(out_dir / "normalized.ipynb", write_notebook_text(nb))
    atomic_write_text(out_dir / "scores.json", json.dumps(scores, indent=1, sort_keys=True) + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursekit.grading.job",
                                     description="Grade one submission (scores.json, normalized.ipynb).")
    parser.add_argument("source", help="the source notebook")
    parser.add_argument("submission", help="the submitted notebook")
    parser.add_argument("out_dir", help="where scores.json and normalized.ipynb go")
    parser.add_argument("--secret-file", help="file holding the course's grading secret")
    parser.add_argument("--no-display", action="store_true", help="skip the display run")
    args = parser.parse_args(argv)
    if not args.secret_file:
        parser.error("--secret-file is required: the probes' inputs derive from the course's secret")
    secret = Path(args.secret_file).read_text(encoding="utf-8").strip()
    scores = grade_submission(args.source, args.submission, args.out_dir, secret=secret,
                              display=not args.no_display)
    got = sum(t["points"] for t in scores["tests"].values())
    top = sum(t["max"] for t in scores["tests"].values())
    print(f"{scores['student']} {scores['chapter']}: {got:g}/{top:g}"
          + (f" ({scores['reason']})" if not scores["ok"] else ""))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
