"""Grade one submission: a self-contained job (submission in, scores JSON and a notebook out).

    python -m coursekit.grading.job SOURCE SUBMISSION OUT_DIR [--secret-file F] [--no-display]

SOURCE is the course's source notebook (course/source/<chapter>/<chapter>.ipynb), SUBMISSION the
student's file (course/submitted/<student>/<chapter>/<chapter>.ipynb). The job writes, atomically,
OUT_DIR/scores.json and OUT_DIR/normalized.ipynb (the submission with its locked cells restored
from the source, and, with display on, the outputs of a sandboxed run for the hand grader).
"""
from __future__ import annotations

from pathlib import Path

from coursekit.grading.sandbox import Limits

__all__ = ["grade_submission", "Limits"]


def grade_submission(source_nb: str | Path, submission_path: str | Path, out_dir: str | Path, *,
                     secret: str, limits: Limits | None = None, display: bool = True) -> dict:
    """Grade one submission; write OUT_DIR/scores.json and OUT_DIR/normalized.ipynb; return the scores.

    source_nb: the source notebook (the reference for cells, metadata and points);
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
    raise NotImplementedError("grade_submission: being written (helper G1)")
