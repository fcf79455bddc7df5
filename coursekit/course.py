"""An nbgrader course from the book in one command; grading a class in one more.

    python -m coursekit.course book course [--force]        # make course: source/, release/, gradebook
    python -m coursekit.course autograde course [--jobs N] [--engine local|dask] [--scheduler ADDR]
    python -m coursekit.course scores course                 # the score table from the gradebook
    python -m coursekit.course grade course CHAPTER STUDENT GRADE_ID POINTS   # a hand-graded answer

`build` (the default) checks the grading metadata of every chapter of _toc.yml that has some (errors
name the notebook and the cell), writes `course/nbgrader_config.py` and
`course/source/<chapter>/<chapter>.ipynb`, then runs `nbgrader generate_assignment` (student
versions in `course/release/`). It remembers the sha256 of every file it wrote
(`course/.coursekit_manifest.json`) and refuses to overwrite one that was edited since; `--force`
overwrites after keeping a copy in `course/backup/<time>/`. It also writes the course's grading
secret (`course/.grading_secret`, mode 0600, kept across runs), which the grading jobs use to
derive probe inputs that students cannot know in advance.

`autograde` never runs student code in nbgrader or in this process. It makes one job per submission
(coursekit.grading.batch; each job runs coursekit.grading.job, whose sandbox is the only place
student code runs), runs them in N workers (`--jobs`, locally or on Dask), merges the results by
(chapter, student, sha256), writes them to `course/grading/results/`, stages the normalized
notebooks in `course/grading/staging/` (the files in `submitted/` are never changed) and then, as
the only writer of the SQLite gradebook, runs `nbgrader autograde` per chapter on the staging
folder, with coursekit.grading.bridge in place of nbgrader's Execute step. Hand grades survive.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import hashlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from coursekit.gradebook import (  # noqa: F401  (Score, read_scores: re-exported for callers)
    COURSE_ID, Score, Timing, format_scores, read_scores, restore_hand_grades, save_hand_grades,
    set_manual_score)
from coursekit.homework import chapter_paths, student_version
from coursekit.markers import BEGIN, BEGIN_HIDDEN, check_markers, nbgrader_metadata, solution_gates
from coursekit.safe_io import NotebookError, atomic_write_text, check_output_dir, make_dirs, read_notebook

ROOT = Path(__file__).resolve().parents[1]
CONFIG_HEADER = "# Written by `python -m coursekit.course` (make course)"
MANIFEST = ".coursekit_manifest.json"
SECRET = ".grading_secret"
GRADING_DIR = "grading"  # results/<chapter>/<student>/, staging/<student>/<chapter>/, ledger.json
STAGING = f"{GRADING_DIR}/staging"
# zip_collect: downloads named <student-id>_<chapter>.ipynb (student ids without "_"), or Moodle's
# "<Full Name>_<id>_assignsubmission_file_<chapter>.ipynb"; the chapter starts with two digits. A
# browser's " (1)" before .ipynb (a second download) is allowed: nbgrader skipped such a file with
# a warning only, so the student got no grade.
ZIP_REGEXP = (r".*/(?:[^/]*_(?=\d+_assignsubmission_file_))?(?P<student_id>[A-Za-z0-9.@-]+)_"
              r"(?:assignsubmission_file_)?(?P<file_id>\d\d_[A-Za-z0-9_]+)(?: ?\(\d+\))?\.ipynb$")
# nbgrader log lines an instructor must see: tampering with locked cells or points, unknown or
# missing cells, late work, and nbgrader's own errors
WARNING_PATTERNS = ("has changed", "Missing grade cell", "does not exist in the database", "late",
                    "[AutogradeApp | ERROR]")


@dataclass(frozen=True)
class Points:
    """Points of one chapter: autograded (autograder-tests cells) and graded by hand (answer cells)."""

    auto: float
    manual: float
    cells: tuple[str, ...]  # grade_ids of all nbgrader cells, in order
    missing_rubrics: tuple[str, ...] = ()  # hand-graded answers without metadata funml.rubric


def check_grading_metadata(nb: NotebookNode, name: str = "notebook") -> Points:
    """Check a chapter's nbgrader metadata against spec section 7; raise NotebookError naming the cell.

    Every nbgrader cell: schema_version 3, a grade_id of letters, digits, '-' and '_' unique in the
    notebook; graded cells have points > 0. Answer cells (solution) are unlocked; a markdown answer is
    graded by hand; an autograder-tests cell (grade, not solution) is a locked code cell without a
    solution region or hidden tests (the course grader holds those), placed after {solution-end}.
    """
    check_markers(nb, name)
    ids: dict[str, int] = {}
    auto = manual = 0.0
    inside, answers_seen, no_rubric = False, 0, []
    for i, cell in enumerate(nb.cells):
        where = f"{name}, cell {i}"
        if cell.cell_type == "markdown" and not nbgrader_metadata(cell):
            for gate in solution_gates(cell.source):
                inside = gate == "solution-start"
            continue
        meta = nbgrader_metadata(cell)
        if not meta:
            continue
        if meta.get("schema_version") != 3:
            raise NotebookError(f"{where}: nbgrader metadata needs \"schema_version\": 3")
        gid = meta.get("grade_id")
        if not isinstance(gid, str) or not gid or not all(ch.isalnum() or ch in "-_" for ch in gid):
            raise NotebookError(f"{where}: grade_id {gid!r} must be letters, digits, '-' or '_'")
        if gid in ids:
            raise NotebookError(f"{where}: grade_id {gid!r} is also used by cell {ids[gid]}")
        ids[gid] = i
        grade, solution, locked = bool(meta.get("grade")), bool(meta.get("solution")), bool(meta.get("locked"))
        points = meta.get("points", 0)
        if grade and (not isinstance(points, (int, float)) or isinstance(points, bool) or points <= 0):
            raise NotebookError(f"{where} ({gid}): a graded cell needs \"points\" > 0, got {points!r}")
        if solution:
            answers_seen += 1
            if locked:
                raise NotebookError(f"{where} ({gid}): an answer cell must not be locked")
            if cell.cell_type == "markdown" and not grade:
                raise NotebookError(f"{where} ({gid}): a prose answer is graded by hand: \"grade\": true")
            if grade:
                manual += points
                if not str(cell.metadata.get("funml", {}).get("rubric", "")).strip():
                    no_rubric.append(gid)
        elif grade:
            if cell.cell_type != "code":
                raise NotebookError(f"{where} ({gid}): an autograder-tests cell must be a code cell")
            if not locked:
                raise NotebookError(f"{where} ({gid}): an autograder-tests cell must be locked")
            if BEGIN in cell.source:
                raise NotebookError(f"{where} ({gid}): an autograder-tests cell holds a solution region; "
                                    "put the solution in its own answer cell")
            if BEGIN_HIDDEN in cell.source:
                raise NotebookError(f"{where} ({gid}): hidden tests in a notebook reach students; the "
                                    "course grader's probes live in coursekit/grading")
            if inside:
                raise NotebookError(f"{where} ({gid}): the autograder-tests cell sits inside "
                                    "{solution-start}/{solution-end}; it belongs after {solution-end}")
            if not answers_seen:
                raise NotebookError(f"{where} ({gid}): an autograder-tests cell before any answer cell")
            auto += points
    return Points(auto=auto, manual=manual, cells=tuple(ids), missing_rubrics=tuple(no_rubric))


def has_grading_metadata(nb: NotebookNode) -> bool:
    return any(nbgrader_metadata(c) for c in nb.cells)


def grading_chapters(src_dir: str | Path) -> list[Path]:
    """Chapters of `src_dir` (toc order) that carry nbgrader metadata."""
    return [p for p in chapter_paths(Path(src_dir)) if has_grading_metadata(read_notebook(p))]


def nbgrader_config_text(repo: Path = ROOT) -> str:
    return f'''{CONFIG_HEADER}; rewritten by each run.
# Course from the chapters of {repo}/book; change the chapters, then run `make course` again.
import os
import sys

REPO = {str(repo)!r}
HERE = os.path.dirname(os.path.abspath(__file__))
BIN = os.path.dirname(sys.executable)  # this environment's bin/: nbgrader runs `alembic` from PATH
os.environ["PATH"] = BIN + os.pathsep + os.environ.get("PATH", "")

sys.path.insert(0, REPO)
from coursekit.grading.bridge import autograde_preprocessors, sanitize_preprocessors  # noqa: E402
from coursekit.homework import nbgrader_preprocessors  # noqa: E402

c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "{COURSE_ID}"
c.CourseDirectory.root = HERE
# nbgrader clears solution regions and answer cells; the book's own step before it also drops the
# solution markers and explanations and turns exercise markers into headings (as `make homework`).
c.GenerateAssignment.preprocessors = nbgrader_preprocessors()
# nbgrader never runs student code: `python -m coursekit.course autograde` grades every submission
# in a sandboxed job first; here the bridge takes the place of Execute and copies the job's verdicts
# (grading/results/<chapter>/<student>/scores.json) into the tests cells, so the gradebook holds
# exactly the grader's points. A plain `nbgrader autograde` without those results grades nothing.
c.Autograde.sanitize_preprocessors = sanitize_preprocessors()
c.Autograde.autograde_preprocessors = autograde_preprocessors()
c.OverwriteCells.add_missing_cells = True  # a deleted tests cell comes back (and scores the verdict)
c.BridgeVerdicts.results_dir = os.path.join(HERE, "{GRADING_DIR}", "results")
# `nbgrader zip_collect CHAPTER`: files in downloaded/CHAPTER/archive/ named
# <student-id>_<chapter>.ipynb, or as Moodle names them,
# <Full Name>_<id>_assignsubmission_file_<chapter>.ipynb (zips of those are unpacked first)
c.FileNameCollectorPlugin.named_regexp = {ZIP_REGEXP!r}
'''


def _env() -> dict[str, str]:
    bin_dir = os.path.dirname(sys.executable)
    env = {k: v for k, v in os.environ.items() if k != "FUNML_GRADING"}
    return {**env, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}


def run_nbgrader(course_dir: str | Path, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    """Run `python -m nbgrader ARGS` in the course folder with this environment.

    check: raise RuntimeError on a non-zero exit, with nbgrader's error lines (not only the tail).
    """
    cmd = [sys.executable, "-m", "nbgrader", *args]
    proc = subprocess.run(cmd, cwd=course_dir, env=_env(), capture_output=True, text=True)
    if proc.returncode and check:
        lines = (proc.stdout + proc.stderr).strip().splitlines()
        errors = [ln for ln in lines if "ERROR" in ln or "Error" in ln][:10] or lines[-15:]
        raise RuntimeError(f"nbgrader {' '.join(args)} failed in {course_dir} (exit {proc.returncode}):\n"
                           + "\n".join(errors))
    return proc


# ------------------------------------------------------------------------------------ make course
def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _read_manifest(course: Path) -> dict[str, str]:
    try:
        data = json.loads((course / MANIFEST).read_text(encoding="utf-8"))
        return {str(k): str(v) for k, v in data.get("files", {}).items()}
    except (OSError, ValueError, AttributeError):
        return {}


def ensure_secret(course: Path) -> Path:
    """The course's grading secret: created once (random, mode 0600, atomically), then kept."""
    path = course / SECRET
    if path.is_symlink():
        raise NotebookError(f"{path} is a symbolic link; refusing to use it as the grading secret")
    if path.is_file() and path.read_text(encoding="utf-8").strip():
        os.chmod(path, 0o600)
        return path
    old = os.umask(0o077)  # the temporary file, and so the secret, is created 0600
    try:
        atomic_write_text(path, secrets.token_hex(32) + "\n")
    finally:
        os.umask(old)
    os.chmod(path, 0o600)
    return path


def _protect_edits(course: Path, planned: dict[Path, str], force: bool) -> list[str]:
    """Refuse (or, with force, back up) files an instructor changed since the last run wrote them."""
    manifest = _read_manifest(course)
    edited = []
    for path, text in planned.items():
        if not path.is_file():
            continue
        current = _sha(path.read_bytes())
        rel = path.relative_to(course).as_posix()
        if current == _sha(text.encode("utf-8")) or manifest.get(rel) == current:
            continue
        edited.append(path)
    if edited and not force:
        names = ", ".join(str(p) for p in edited)
        raise NotebookError(f"{names}: edited since `make course` wrote it (or not written by it); "
                            "refusing to overwrite. Move your edit into the chapter in book/, or run "
                            "with --force to keep a copy in course/backup/ and overwrite")
    messages = []
    if edited:
        stamp = _dt.datetime.now().strftime("%Y%m%d-%H%M%S")
        for path in edited:
            backup = course / "backup" / stamp / path.relative_to(course)
            backup.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(path, backup)
            messages.append(f"{path} was edited: your version is kept as {backup}")
    return messages


def _check_toc(src_dir: Path) -> None:
    """A page listed in the book's _toc.yml (in src_dir or its parent) that is missing is an error."""
    from coursekit.toc import source_of, toc_entries

    for toc in (src_dir / "_toc.yml", src_dir.parent / "_toc.yml"):
        if toc.is_file():
            missing = [e.docname for e in toc_entries(toc) if source_of(toc.parent, e.docname) is None]
            if missing:
                raise NotebookError(f"{toc} lists {', '.join(missing)}, missing in {toc.parent}: "
                                    "add the file or remove it from the table of contents")
            return


def write_course(src_dir: str | Path, course_dir: str | Path, chapters: list[str] | None = None,
                 generate: bool = True, force: bool = False) -> dict[str, Points]:
    """Write (and, with generate, release) the nbgrader course; return the points of each chapter.

    chapters: stems to include (default: every chapter with nbgrader metadata). Every chapter is read
    and checked, and every file to be replaced compared with the manifest, before anything is written.
    """
    src_dir = Path(src_dir)
    if not src_dir.is_dir():
        raise NotebookError(f"source folder {src_dir} does not exist or is not a folder")
    course = check_output_dir(src_dir, course_dir, what="course folder")
    _check_toc(src_dir)
    paths = chapter_paths(src_dir)
    if chapters is not None:
        unknown = sorted(set(chapters) - {p.stem for p in paths})
        if unknown:
            raise NotebookError(f"no chapter {', '.join(unknown)} in {src_dir}")
        paths = [p for p in paths if p.stem in chapters]
    plan = []
    for path in paths:
        nb = read_notebook(path)
        if not has_grading_metadata(nb):
            if chapters is not None:
                raise NotebookError(f"{path}: no nbgrader metadata, so nothing to grade")
            continue
        points = check_grading_metadata(nb, str(path))
        student_version(nb, str(path))  # every marker problem now, before anything is written
        for cell in nb.cells:
            if cell.cell_type == "code":
                cell.outputs, cell.execution_count = [], None
        plan.append((path.stem, nb, points))
    config = course / "nbgrader_config.py"
    if config.exists() and not force and not config.read_text(encoding="utf-8").startswith(CONFIG_HEADER):
        raise NotebookError(f"{config} exists and was not written by coursekit.course; move it away "
                            "first (or --force keeps a copy in course/backup/)")
    planned = {config: nbgrader_config_text()}
    for stem, nb, _ in plan:
        planned[course / "source" / stem / f"{stem}.ipynb"] = nbformat.writes(nb) + "\n"
    notes = _protect_edits(course, planned, force)
    make_dirs(course, src_dir)
    manifest = _read_manifest(course)
    for path, text in planned.items():
        make_dirs(path.parent, src_dir)
        atomic_write_text(path, text)
        manifest[path.relative_to(course).as_posix()] = _sha(text.encode("utf-8"))
    atomic_write_text(course / MANIFEST, json.dumps({"files": manifest}, indent=1, sort_keys=True) + "\n")
    ensure_secret(course)
    for line in notes:
        print(line, file=sys.stderr)
    if generate:
        for stem, _, _ in plan:
            run_nbgrader(course, "generate_assignment", stem, "--force")
    return {stem: points for stem, _, points in plan}


# --------------------------------------------------------------------------------- make autograde
@dataclass
class Report:
    """What an autograde run did: timing, one line per odd submission, nbgrader's warnings."""

    timing: Timing
    graded: int
    job_wall: float                       # summed wall seconds of the jobs
    job_cpu: float
    workers: int
    jobs_wall: float                      # wall seconds of the parallel part (the jobs)
    lines: list[str] = field(default_factory=list)     # one line per student with a reason
    warnings: list[str] = field(default_factory=list)  # nbgrader's warnings that matter

    def summary(self) -> str:
        n = max(self.graded, 1)
        text = (f"graded {self.graded} submission(s) in {self.timing.wall:.1f} s; grading jobs: "
                f"{self.job_wall / n:.1f} s wall and {self.job_cpu / n:.1f} s CPU per submission, "
                f"{self.jobs_wall:.1f} s for all with {self.workers} worker(s)")
        if self.workers > 1 and self.jobs_wall > 0:
            text += (f"; the jobs summed {self.job_wall:.1f} s, speed-up "
                     f"{self.job_wall / self.jobs_wall:.2f}x")
        return text + f"; gradebook (nbgrader, one writer): {self.timing.wall - self.jobs_wall:.1f} s"


def _release(course: Path, chapter: str) -> Path:
    path = course / "release" / chapter / f"{chapter}.ipynb"
    if not path.is_file():
        raise NotebookError(f"no student version {path}: run `make course` first")
    return path


def _rubric_cells(source: NotebookNode) -> dict[str, str]:
    return {nbgrader_metadata(c)["grade_id"]: str(c.metadata["funml"]["rubric"]).strip()
            for c in source.cells
            if nbgrader_metadata(c).get("grade") and nbgrader_metadata(c).get("solution")
            and str(c.metadata.get("funml", {}).get("rubric", "")).strip()}


def staged_notebook(normalized: str | None, release: Path, rubrics: dict[str, str]) -> tuple[str, str | None]:
    """(notebook text for nbgrader, a note when the normalized notebook could not be used).

    The grader's normalized notebook, or the untouched release when there is none; after each
    hand-graded answer a Markdown cell with its rubric, which the feedback then shows.
    """
    note = None
    nb = None
    if normalized is not None:
        try:
            nb = nbformat.reads(normalized, as_version=4)
            nbformat.validate(nb)
        except Exception as err:  # a broken display notebook costs the display, never the points
            note = f"display notebook unreadable ({type(err).__name__}); the release was staged"
            nb = None
    if nb is None:
        nb = nbformat.read(release, as_version=4)
    cells = []
    for cell in nb.cells:
        cells.append(cell)
        gid = nbgrader_metadata(cell).get("grade_id")
        if gid in rubrics and nbgrader_metadata(cell).get("solution"):
            cells.append(nbformat.v4.new_markdown_cell(f"**Rubric** ({gid}): {rubrics[gid]}"))
    nb.cells = cells
    problem = nbgrader_safe(nb)
    if problem:
        note = f"{problem}; the untouched release was staged"
        nb = nbformat.read(release, as_version=4)
    return nbformat.writes(nb) + "\n", note


def nbgrader_safe(nb: NotebookNode) -> str | None:
    """Make a notebook one that nbgrader's autograde cannot abort on; say what could not be fixed.

    nbgrader's DeduplicateIds empties the metadata of a repeated grade_id, which its validator then
    calls an old schema (SchemaTooOldError stops the whole chapter): every copy but the last loses
    its nbgrader metadata here instead (nbgrader keeps the last one too). Cells with another
    schema_version get 3 (the grader mapped them onto the release already).
    """
    from nbgrader.nbgraderformat import MetadataValidator

    seen: set[str] = set()
    for cell in reversed(nb.cells):
        meta = cell.get("metadata", {}).get("nbgrader")
        if meta is None:
            continue
        gid = meta.get("grade_id") if isinstance(meta, dict) else None
        if not isinstance(meta, dict) or not gid or gid in seen:
            del cell.metadata["nbgrader"]
            continue
        seen.add(gid)
        meta["schema_version"] = 3
    try:
        MetadataValidator().validate_nb(nb)
    except Exception as err:  # nbgrader's ValidationError / SchemaTooOldError / SchemaTooNewError
        return f"nbgrader metadata unusable ({type(err).__name__}: {str(err).splitlines()[0][:120]})"
    return None


def _reason_line(student: str, chapter: str, scores: dict, notes: list[str]) -> str | None:
    parts = []
    if not scores.get("ok", False) and scores.get("reason"):
        reason = str(scores["reason"])
        for prefix in (f"{student}: {chapter}: ", f"{student}: "):  # the line names them already
            reason = reason[len(prefix):] if reason.startswith(prefix) else reason
        parts.append(reason)
    parts += [str(n) for n in scores.get("notes") or []] + notes
    if not parts:
        return None
    return f"{student} / {chapter}: " + "; ".join(dict.fromkeys(parts))


def _write_result(course: Path, key: tuple[str, str], result: dict) -> None:
    chapter, student = key
    folder = course / GRADING_DIR / "results" / chapter / student
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "scores.json", json.dumps(result["scores"], indent=1) + "\n")
    if result.get("normalized") is not None:
        atomic_write_text(folder / "normalized.ipynb", result["normalized"])
    elif (folder / "normalized.ipynb").exists():
        (folder / "normalized.ipynb").unlink()


def _recorded(course: Path, chapter: str, student: str, since: float) -> bool:
    out = course / "autograded" / student / chapter / f"{chapter}.ipynb"
    return out.is_file() and out.stat().st_mtime >= since


def _grading_engine(engine: str, workers: int, scheduler: str | None):
    if engine == "local":
        from coursekit.grading.batch import run_local
        return lambda payloads, progress=None: run_local(payloads, workers, progress=progress)
    if engine == "dask":
        from coursekit.grading.dask_jobs import run_dask
        return lambda payloads, progress=None: run_dask(payloads, workers, scheduler, progress=progress)
    raise ValueError(f"engine must be 'local' or 'dask', got {engine!r}")


def autograde(course_dir: str | Path, assignments: list[str] | None = None, student: str | None = None,
              jobs: int = 1, engine: str = "local", scheduler: str | None = None,
              display: bool = True, verbose: bool = True) -> Report:
    """Grade every submission (or one student's) of the assignments; return what happened.

    assignments: chapter names; by default every chapter with at least one submission.
    jobs: grading jobs at a time (workers); display: run the notebook for its outputs as well.
    """
    from coursekit.grading.batch import failed_scores, find_submissions, make_payload, merge_results, run_local

    if not isinstance(jobs, int) or isinstance(jobs, bool) or jobs < 1:
        raise ValueError(f"jobs must be an integer >= 1, got {jobs!r}")
    run = _grading_engine(engine, jobs, scheduler)
    course = Path(course_dir)
    if not (course / "nbgrader_config.py").is_file():
        raise NotebookError(f"{course} has no nbgrader_config.py: run `make course` first")
    secret_file = course / SECRET
    if not secret_file.is_file():
        raise NotebookError(f"{secret_file} is missing: run `make course` first")
    secret = secret_file.read_text(encoding="utf-8").strip()
    known = sorted(p.name for p in (course / "source").iterdir() if p.is_dir()) \
        if (course / "source").is_dir() else []
    subs, problems = find_submissions(course / "submitted", known)
    if assignments:
        unknown = [a for a in assignments if a not in known]
        if unknown:
            raise NotebookError(f"no chapter {', '.join(unknown)} in this course; chapters: {', '.join(known)}")
        missing = [a for a in assignments if not any(s.chapter == a for s in subs)]
        if missing:
            raise NotebookError(f"no submissions of {', '.join(missing)} in {course / 'submitted'}/<student>/")
        subs = [s for s in subs if s.chapter in assignments]
    if student:
        students = sorted({s.student for s in subs})
        subs = [s for s in subs if s.student == student]
        if not subs:  # a typo: say which ids there are, as `grade` does
            raise NotebookError(f"no submission of student {student!r} in {course / 'submitted'}; "
                                f"students: {', '.join(students) or 'none'}")
    if not subs:
        raise NotebookError(f"no submissions in {course / 'submitted'}: put each as "
                            "submitted/<student>/<chapter>/<chapter>.ipynb")
    say = print if verbose else (lambda *a, **k: None)
    start, lines, warnings = time.perf_counter(), list(problems), []

    # 1. grading jobs, in parallel; exactly one result per (chapter, student, sha256)
    payloads = {s.key: make_payload(s, _release(course, s.chapter), secret, display)
                for s in subs if s.path is not None}
    expected = {k: p["sha256"] for k, p in payloads.items()}
    done = [0]

    def progress(result: dict) -> None:
        done[0] += 1
        say(f"[{done[0]}/{len(payloads)}] {result['student']} / {result['chapter']}: "
            f"{result['wall']:.1f} s wall, {result['cpu']:.1f} s CPU", flush=True)

    results = run(list(payloads.values()), progress=progress) if payloads else []
    jobs_wall = time.perf_counter() - start
    merged, missing, merge_notes = merge_results(expected, results)
    lines += merge_notes
    if missing:  # a result that never came back: grade it again here, once
        again, _, _ = merge_results(expected, run_local([payloads[k] for k in missing], 1))
        merged.update(again)
    for k in set(expected) - set(merged):
        merged[k] = {"scores": failed_scores(payloads[k], "no result from the grading job"),
                     "normalized": None, "wall": 0.0, "cpu": 0.0}
    by_key = {s.key: s for s in subs}
    for s in subs:
        if s.path is None:
            merged[s.key] = {"scores": {"chapter": s.chapter, "student": s.student, "sha256": "",
                                        "ok": False, "reason": "nothing to grade", "tests": {}},
                             "normalized": None, "wall": 0.0, "cpu": 0.0}
    job_wall = sum(r.get("wall", 0.0) for r in merged.values())
    job_cpu = sum(r.get("cpu", 0.0) for r in merged.values())

    # 2. one writer: results to disk, normalized notebooks staged, nbgrader per chapter with the bridge
    staging = course / STAGING
    if staging.exists():
        shutil.rmtree(staging)
    ledger_path = course / GRADING_DIR / "ledger.json"
    try:
        ledger = json.loads(ledger_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        ledger = {}
    for key, result in sorted(merged.items()):
        chapter, name = key
        _write_result(course, key, result)
        rubrics = _rubric_cells(nbformat.read(course / "source" / chapter / f"{chapter}.ipynb", as_version=4))
        text, note = staged_notebook(result.get("normalized"), _release(course, chapter), rubrics)
        folder = staging / name / chapter
        folder.mkdir(parents=True, exist_ok=True)
        atomic_write_text(folder / f"{chapter}.ipynb", text)
        sub = by_key[key]
        stamp = (sub.path.parent if sub.path is not None else course / "submitted" / name / chapter) / "timestamp.txt"
        if stamp.is_file():
            atomic_write_text(folder / "timestamp.txt", stamp.read_text(encoding="utf-8"))
        line = _reason_line(name, chapter, result["scores"], sub.notes + ([note] if note else []))
        if line:
            lines.append(line)
    for chapter in sorted({k[0] for k in merged}):
        students = sorted(k[1] for k in merged if k[0] == chapter)
        saved = save_hand_grades(course, chapter)
        before = ledger.get(chapter, {})
        changed = {s for s in students
                   if before.get(s) not in (None, merged[(chapter, s)]["scores"].get("sha256"))}
        since = time.time() - 1
        extra = ["--student", student] if student else []
        proc = run_nbgrader(course, "autograde", chapter, "--force",
                            f"--CourseDirectory.submitted_directory={STAGING}", *extra, check=False)
        warnings += _nbgrader_warnings(proc.stdout + proc.stderr)
        for name in [s for s in students if not _recorded(course, chapter, s, since)]:
            # one notebook nbgrader could not take: once more alone, then as the untouched release (0)
            proc = run_nbgrader(course, "autograde", chapter, "--force", "--student", name,
                                f"--CourseDirectory.submitted_directory={STAGING}", check=False)
            if _recorded(course, chapter, name, since):
                continue
            errors = [ln for ln in (proc.stdout + proc.stderr).splitlines() if "ERROR" in ln][:2]
            atomic_write_text(staging / name / chapter / f"{chapter}.ipynb",
                              _release(course, chapter).read_text(encoding="utf-8"))
            scores = failed_scores({"chapter": chapter, "student": name,
                                    "sha256": merged[(chapter, name)]["scores"].get("sha256", "")},
                                   "nbgrader could not record the graded notebook: "
                                   + (" | ".join(errors) or "no message"))
            _write_result(course, (chapter, name), {"scores": scores, "normalized": None})
            run_nbgrader(course, "autograde", chapter, "--force", "--student", name,
                         f"--CourseDirectory.submitted_directory={STAGING}", check=False)
            lines.append(f"{name} / {chapter}: scored 0: {scores['reason']}")
        lines += restore_hand_grades(course, chapter, saved, changed)
        ledger.setdefault(chapter, {}).update(
            {s: merged[(chapter, s)]["scores"].get("sha256", "") for s in students})
    atomic_write_text(ledger_path, json.dumps(ledger, indent=1, sort_keys=True) + "\n")
    timing = Timing(wall=time.perf_counter() - start, cpu=job_cpu)
    return Report(timing, len(merged), job_wall, job_cpu, jobs, jobs_wall, lines,
                  list(dict.fromkeys(warnings)))


def _nbgrader_warnings(log: str) -> list[str]:
    keep = []
    for line in log.splitlines():
        if any(p in line for p in WARNING_PATTERNS) and "Traceback" not in line:
            keep.append(re.sub(r"^\[AutogradeApp \| (\w+)\] ", r"nbgrader \1: ", line.strip()))
    return keep


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv.pop(0) if argv and argv[0] in ("build", "autograde", "scores", "grade") else "build"
    # `--help` alone shows build's options (the default command): name the others too
    parser = argparse.ArgumentParser(prog=f"python -m coursekit.course {command}",
                                     description=__doc__.split("\n")[0],
                                     epilog="commands: build (the default), autograde, scores, grade; "
                                     "`python -m coursekit.course COMMAND --help` shows each")
    if command == "build":
        parser.add_argument("src_dir", help="folder with the chapter notebooks, e.g. book")
        parser.add_argument("course_dir", help="the nbgrader course folder to write, e.g. course")
        parser.add_argument("--chapter", action="append", help="only this chapter (repeatable)")
        parser.add_argument("--no-generate", action="store_true", help="write source/ only")
        parser.add_argument("--force", action="store_true",
                            help="overwrite files edited in the course folder, keeping a copy in backup/")
    else:
        parser.add_argument("course_dir", help="the nbgrader course folder, e.g. course")
    if command == "autograde":
        parser.add_argument("assignments", nargs="*", help="chapters to grade (default: all)")
        parser.add_argument("--student", help="only this student's submission")
        parser.add_argument("--jobs", type=int, default=1, help="grading jobs at a time (default 1)")
        parser.add_argument("--engine", choices=("local", "dask"), default="local",
                            help="local processes (default) or Dask distributed")
        parser.add_argument("--scheduler", help="with --engine dask: a running scheduler's address "
                            "(default: a LocalCluster of --jobs processes)")
        parser.add_argument("--no-display", action="store_true",
                            help="skip the display run (verdicts only; faster)")
    if command == "grade":
        parser.add_argument("assignment", help="the chapter, e.g. 02_sparse_autoencoders")
        parser.add_argument("student", help="the student id (folder name under submitted/)")
        parser.add_argument("grade_id", help="the graded cell, e.g. ex-sparse-2-answer")
        parser.add_argument("points", type=float, help="points given")
    args = parser.parse_args(argv)
    if command == "autograde" and args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    try:
        if command == "build":
            points = write_course(args.src_dir, args.course_dir, args.chapter, not args.no_generate,
                                  force=args.force)
            if not points:
                print(f"no chapter in {args.src_dir} carries nbgrader metadata", file=sys.stderr)
                return 1
            for stem, p in points.items():
                print(f"{stem}: {p.auto:g} points autograded, {p.manual:g} by hand")
                if p.missing_rubrics:
                    print(f"  warning: no rubric (metadata funml.rubric) for {', '.join(p.missing_rubrics)}",
                          file=sys.stderr)
            print(f"course written to {Path(args.course_dir)}; release versions in "
                  f"{Path(args.course_dir) / 'release'}; submissions go to submitted/<student>/<chapter>/")
        elif command == "autograde":
            report = autograde(args.course_dir, args.assignments or None, args.student, jobs=args.jobs,
                               engine=args.engine, scheduler=args.scheduler, display=not args.no_display)
            for line in report.lines:
                print(line)
            for line in report.warnings:
                print(line)
            print(format_scores(read_scores(args.course_dir)))
            print(report.summary())
        elif command == "grade":
            set_manual_score(args.course_dir, args.assignment, args.student, args.grade_id, args.points)
            print(format_scores([r for r in read_scores(args.course_dir) if r.student == args.student]))
        else:
            print(format_scores(read_scores(args.course_dir)))
    except (ValueError, LookupError, RuntimeError, OSError) as err:  # NotebookError is a ValueError
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
