"""Grading a class: one self-contained job per submission, run in parallel, merged without loss.

A job is plain data in, plain data out, so any engine can run it on any machine that has this
project installed (no shared folder needed):

    payload = {"chapter", "student", "sha256", "source_name", "source_text" (the release notebook),
               "submission_name", "submission" (bytes), "secret", "display"}
    run_job(payload) -> {"chapter", "student", "sha256", "scores" (scores.json as a dict),
                         "normalized" (notebook text or None), "wall", "cpu", "returncode", "log"}

`run_job` writes the payload into a fresh temporary folder and runs
`python -m coursekit.grading.job SOURCE SUBMISSION OUT_DIR --secret-file F [--no-display]` there
(the only code that runs student code, in its sandbox); it never touches the course folder.
`run_local` runs jobs in N worker slots (each a subprocess; threads only wait for them);
`coursekit.grading.dask_jobs` runs the same `run_job` on Dask. `merge_results` keeps exactly one
result per (chapter, student, sha256 of the submitted file): a job that ran twice (a worker that
died and was replaced) counts once, a job whose result is missing is reported so it can be run again.
"""
from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

JOB_MODULE = "coursekit.grading.job"  # the one place student code runs (in its sandbox)
JOB_TIMEOUT = 900  # seconds for one whole job; the sandbox's own limits stop runaway cells first
ROOT = Path(__file__).resolve().parents[2]


@dataclass
class Submission:
    """One submission found in the course's submitted/ folder, with what was odd about it."""

    chapter: str
    student: str
    path: Path | None          # the file to grade; None when there is nothing readable to grade
    notes: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return (self.chapter, self.student)


def sha256_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def find_submissions(submitted: Path, chapters: Iterable[str]) -> tuple[list[Submission], list[str]]:
    """Every submission under `submitted/<student>/<chapter>/<chapter>.ipynb`, tolerating slips.

    Returns (submissions, problems). A renamed notebook (the only .ipynb in the chapter folder, or
    the newest of several) and a notebook put straight into the student's folder
    (`<student>/<chapter>.ipynb`) are graded, with a note; a folder of an unknown chapter, a stray
    file and an empty chapter folder are listed in problems (the last one also scores 0).
    """
    chapters = list(chapters)
    found: dict[tuple[str, str], Submission] = {}
    problems: list[str] = []
    if not submitted.is_dir():
        return [], problems
    for student_dir in sorted(submitted.iterdir()):
        student = student_dir.name
        if student.startswith("."):
            continue
        if not student_dir.is_dir():
            problems.append(f"{student_dir}: a file where a student's folder belongs; ignored")
            continue
        for entry in sorted(student_dir.iterdir()):
            if entry.name.startswith("."):
                continue
            if entry.is_dir():
                if entry.name not in chapters:
                    problems.append(f"{student}: folder {entry.name!r} is no chapter of this course "
                                    f"(chapters: {', '.join(chapters)}); ignored")
                    continue
                chapter = entry.name
                expected = entry / f"{chapter}.ipynb"
                sub = Submission(chapter, student, None)
                if expected.is_file():
                    sub.path = expected
                else:
                    others = sorted((p for p in entry.glob("*.ipynb") if p.is_file()),
                                    key=lambda p: p.stat().st_mtime)
                    if others:
                        sub.path = others[-1]
                        sub.notes.append(f"renamed file {sub.path.name} graded as {chapter}.ipynb")
                        if len(others) > 1:
                            sub.notes.append(f"{len(others)} notebooks in the folder; graded the "
                                             f"newest, {sub.path.name}")
                    else:
                        sub.notes.append(f"no notebook in {entry}")
                prev = found.get(sub.key)
                if prev is not None and prev.path is not None:  # a loose file was found first
                    sub.notes += [n for n in prev.notes if n not in sub.notes]
                    if sub.path is None:
                        sub.path = prev.path
                found[sub.key] = sub
            elif entry.suffix == ".ipynb" and entry.stem in chapters:
                key = (entry.stem, student)
                note = (f"wrong folder layout: {entry.relative_to(submitted)} belongs in "
                        f"{student}/{entry.stem}/{entry.name}")
                if key in found and found[key].path is not None:
                    found[key].notes.append(note + " (ignored; the chapter folder's file is graded)")
                else:
                    found[key] = Submission(entry.stem, student, entry, [note])
            else:
                problems.append(f"{student}: {entry.name} is not a chapter notebook "
                                f"(expected {student}/<chapter>/<chapter>.ipynb); ignored")
    return [found[k] for k in sorted(found)], problems


def make_payload(sub: Submission, source: Path, secret: str, display: bool = True) -> dict:
    """The job's input as plain data: the grading template, the submitted bytes and the secret."""
    data = sub.path.read_bytes() if sub.path is not None else b""
    return {"chapter": sub.chapter, "student": sub.student, "sha256": sha256_of(data),
            "source_name": source.name, "source_text": source.read_text(encoding="utf-8"),
            "submission_name": sub.path.name if sub.path is not None else f"{sub.chapter}.ipynb",
            "submission": data, "secret": secret, "display": bool(display)}


def failed_scores(payload: dict, reason: str) -> dict:
    """scores.json of a job that produced none: every test scores 0, with the reason."""
    return {"chapter": payload["chapter"], "student": payload["student"], "sha256": payload["sha256"],
            "ok": False, "reason": reason, "tests": {}, "notes": [], "seconds": {"wall": 0.0, "cpu": 0.0}}


def _tail(text: str, lines: int = 3) -> str:
    return " | ".join(line.strip() for line in text.strip().splitlines()[-lines:] if line.strip())


def run_job(payload: dict, timeout: float = JOB_TIMEOUT, python: str = sys.executable) -> dict:
    """Run one grading job in a fresh temporary folder; return its result (never raises for bad input)."""
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="funml-job-") as tmp:
        tmp = Path(tmp)
        os.chmod(tmp, 0o700)
        # the layout the job reads names from: <chapter>.ipynb is the template (the release),
        # submitted/<student>/<chapter>/<file> the student's bytes
        template = tmp / "release" / f"{payload['chapter']}.ipynb"
        template.parent.mkdir()
        template.write_text(payload["source_text"], encoding="utf-8")
        submission = tmp / "submitted" / payload["student"] / payload["chapter"] / payload["submission_name"]
        submission.parent.mkdir(parents=True)
        submission.write_bytes(payload["submission"])
        secret = tmp / "secret"
        fd = os.open(secret, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as f:
            f.write(payload["secret"])
        out = tmp / "out"
        out.mkdir()
        cmd = [python, "-m", JOB_MODULE, str(template), str(submission), str(out),
               "--secret-file", str(secret)]
        if not payload.get("display", True):
            cmd.append("--no-display")
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(
            [str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])}
        env.pop("FUNML_GRADING", None)  # the job decides what its sandboxed runs see
        with open(tmp / "log", "w+b") as log:
            proc = subprocess.Popen(cmd, cwd=tmp, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                                    env=env, start_new_session=True)
            killed = []

            def kill() -> None:  # the job and everything it started (its own process group)
                killed.append(True)
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass

            timer = threading.Timer(timeout, kill)
            timer.start()
            try:
                _, status, usage = os.wait4(proc.pid, 0)  # resource use of the job and its children
            finally:
                timer.cancel()
            proc.returncode = os.waitstatus_to_exitcode(status)
            log.seek(0)
            text = log.read().decode("utf-8", "replace")
        result = {"chapter": payload["chapter"], "student": payload["student"], "sha256": payload["sha256"],
                  "wall": time.perf_counter() - start, "cpu": usage.ru_utime + usage.ru_stime,
                  "returncode": proc.returncode, "log": text[-4000:], "normalized": None,
                  "host": os.uname().nodename, "pid": os.getpid()}
        scores_file, normalized = out / "scores.json", out / "normalized.ipynb"
        scores = None
        if scores_file.is_file():
            try:
                scores = json.loads(scores_file.read_text(encoding="utf-8"))
            except (ValueError, UnicodeDecodeError):
                scores = None
        if isinstance(scores, dict) and proc.returncode == 0:
            result["scores"] = scores
        elif killed:
            result["scores"] = failed_scores(payload, f"the grading job ran over {timeout:g} s and was stopped")
        else:
            why = f"exit {proc.returncode}" if proc.returncode >= 0 else f"killed by signal {-proc.returncode}"
            result["scores"] = failed_scores(payload, f"the grading job failed ({why}): {_tail(text) or 'no output'}")
        if normalized.is_file():
            result["normalized"] = normalized.read_text(encoding="utf-8", errors="replace")
    return result


def run_local(payloads: list[dict], workers: int = 1, job: Callable[[dict], dict] = run_job,
              progress: Callable[[dict], None] | None = None) -> list[dict]:
    """Run every payload through `job` with `workers` jobs at a time; results in completion order.

    A job that was killed by a signal from outside (not our timeout) is run once more.
    """
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    results = []
    with ThreadPoolExecutor(max_workers=workers) as pool:
        futures = {pool.submit(job, p): p for p in payloads}
        for fut in as_completed(futures):
            result = fut.result()
            if result.get("returncode", 0) < 0 and "ran over" not in result["scores"].get("reason", ""):
                result = job(futures[fut])  # killed from outside (e.g. the OOM killer): once more
            results.append(result)
            if progress:
                progress(result)
    return results


def merge_results(expected: dict[tuple[str, str], str], results: Iterable[dict]
                  ) -> tuple[dict[tuple[str, str], dict], list[tuple[str, str]], list[str]]:
    """One result per submission: (merged, missing keys, notes).

    expected: (chapter, student) -> sha256 of the file that was handed to the job. A result for a
    submission that is not expected, or for an older version of the file (another sha256), is
    dropped with a note; a second result for the same (chapter, student, sha256) is a duplicate of a
    job that ran twice and is dropped silently (both came from the same bytes and the same grader).
    """
    merged: dict[tuple[str, str], dict] = {}
    notes: list[str] = []
    for r in results:
        key = (r["chapter"], r["student"])
        if key not in expected:
            notes.append(f"{r['student']}/{r['chapter']}: a result for no submission of this run; dropped")
            continue
        if r["sha256"] != expected[key]:
            notes.append(f"{r['student']}/{r['chapter']}: a result for another version of the file; dropped")
            continue
        if key not in merged or (not merged[key]["scores"].get("ok") and r["scores"].get("ok")):
            merged[key] = r
    missing = sorted(set(expected) - set(merged))
    return merged, missing, notes
