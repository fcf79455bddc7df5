"""An nbgrader course directory from the book, in one command; autograding and scores in one more.

    python -m coursekit.course book course          # make course: source/, release/, gradebook
    python -m coursekit.course autograde course     # make autograde: every submission, then scores
    python -m coursekit.course scores course        # the score table from the gradebook
    python -m coursekit.course grade course CHAPTER STUDENT GRADE_ID POINTS   # a hand-graded answer

`build` (the default) writes `course/nbgrader_config.py` and `course/source/<chapter>/<chapter>.ipynb`
for every chapter of _toc.yml that carries nbgrader metadata (spec section 7), after checking that
metadata (errors name the notebook and the cell), then runs `nbgrader generate_assignment` for each
chapter, which writes the student version to `course/release/<chapter>/` and the gradebook.

nbgrader always runs from this Python environment (`python -m nbgrader`, with this environment's
bin/ first on PATH, where nbgrader finds `alembic`), with FUNML_GRADING=1: each chapter's parameters
cell reads it through `funml_lib.grading_run()` and shrinks its settings, so one submission
autogrades within a minute on two cores; claims are skipped. The config sets the same variables, so
a plain `nbgrader autograde` in the course folder grades the same way.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
from nbformat import NotebookNode

from coursekit.gradebook import (  # noqa: F401  (Score, read_scores: re-exported for callers)
    COURSE_ID, Score, Timing, format_scores, read_scores, set_manual_score)
from coursekit.homework import chapter_paths, student_version
from coursekit.markers import BEGIN, check_markers, nbgrader_metadata, solution_gates
from coursekit.safe_io import NotebookError, atomic_write_text, check_output_dir, make_dirs, read_notebook

ROOT = Path(__file__).resolve().parents[1]
CELL_TIMEOUT = 60  # seconds per cell in autograde; grading settings keep every cell far below
CONFIG_HEADER = "# Written by `python -m coursekit.course` (make course)"
GRADING_ENV = {"FUNML_GRADING": "1", "FUNML_CLAIMS": "skip", "FUNML_STATIC": "1"}


@dataclass(frozen=True)
class Points:
    """Points of one chapter: autograded (autograder-tests cells) and graded by hand (answer cells)."""

    auto: float
    manual: float
    cells: tuple[str, ...]  # grade_ids of all nbgrader cells, in order


def check_grading_metadata(nb: NotebookNode, name: str = "notebook") -> Points:
    """Check a chapter's nbgrader metadata against spec section 7; raise NotebookError naming the cell.

    Every nbgrader cell: schema_version 3, a grade_id of letters, digits, '-' and '_' unique in the
    notebook; graded cells have points > 0. Answer cells (solution) are unlocked; a markdown answer is
    graded by hand; an autograder-tests cell (grade, not solution) is a locked code cell without a
    solution region, placed outside every {solution-start}/{solution-end} pair, after an answer cell.
    """
    check_markers(nb, name)
    ids: dict[str, int] = {}
    auto = manual = 0.0
    inside, answers_seen = False, 0
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
        elif grade:
            if cell.cell_type != "code":
                raise NotebookError(f"{where} ({gid}): an autograder-tests cell must be a code cell")
            if not locked:
                raise NotebookError(f"{where} ({gid}): an autograder-tests cell must be locked")
            if BEGIN in cell.source:
                raise NotebookError(f"{where} ({gid}): an autograder-tests cell holds a solution region; "
                                    "put the solution in its own answer cell")
            if inside:
                raise NotebookError(f"{where} ({gid}): the autograder-tests cell sits inside "
                                    "{solution-start}/{solution-end}; it belongs after {solution-end}")
            if not answers_seen:
                raise NotebookError(f"{where} ({gid}): an autograder-tests cell before any answer cell")
            auto += points
    return Points(auto=auto, manual=manual, cells=tuple(ids))


def has_grading_metadata(nb: NotebookNode) -> bool:
    return any(nbgrader_metadata(c) for c in nb.cells)


def grading_chapters(src_dir: str | Path) -> list[Path]:
    """Chapters of `src_dir` (toc order) that carry nbgrader metadata."""
    return [p for p in chapter_paths(Path(src_dir)) if has_grading_metadata(read_notebook(p))]


def nbgrader_config_text(repo: Path = ROOT, timeout: int = CELL_TIMEOUT) -> str:
    grading = "\n".join(f'os.environ["{k}"] = "{v}"' for k, v in GRADING_ENV.items())
    return f'''{CONFIG_HEADER}; rewritten by each run.
# Course from the chapters of {repo}/book; change the chapters, then run `make course` again.
import os
import sys

REPO = {str(repo)!r}
BIN = os.path.dirname(sys.executable)  # this environment's bin/: nbgrader runs `alembic` from PATH
os.environ["PATH"] = BIN + os.pathsep + os.environ.get("PATH", "")

# Grading settings: each chapter's parameters cell calls funml_lib.grading_run(), which reads
# FUNML_GRADING=1 and shrinks the training (one submission autogrades in under a minute on two
# cores); the run-dependent claims of the text are skipped; explorers draw static figures.
{grading}

sys.path.insert(0, REPO)
from coursekit.homework import nbgrader_preprocessors  # noqa: E402

c = get_config()  # noqa: F821
c.CourseDirectory.course_id = "{COURSE_ID}"
c.CourseDirectory.root = os.path.dirname(os.path.abspath(__file__))
# nbgrader clears solution regions and answer cells; the book's own step before it also drops the
# solution markers and explanations and turns exercise markers into headings (as `make homework`).
c.GenerateAssignment.preprocessors = nbgrader_preprocessors()
c.Execute.timeout = {timeout}  # seconds per cell
'''


def _env() -> dict[str, str]:
    bin_dir = os.path.dirname(sys.executable)
    return {**os.environ, **GRADING_ENV, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}


def run_nbgrader(course_dir: str | Path, *args: str) -> subprocess.CompletedProcess:
    """Run `python -m nbgrader ARGS` in the course folder with this environment; raise on failure."""
    cmd = [sys.executable, "-m", "nbgrader", *args]
    proc = subprocess.run(cmd, cwd=course_dir, env=_env(), capture_output=True, text=True)
    if proc.returncode:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise RuntimeError(f"nbgrader {' '.join(args)} failed in {course_dir} (exit {proc.returncode}):\n{tail}")
    return proc


def write_course(src_dir: str | Path, course_dir: str | Path, chapters: list[str] | None = None,
                 generate: bool = True) -> dict[str, Points]:
    """Write (and, with generate, release) the nbgrader course; return the points of each chapter.

    chapters: stems to include (default: every chapter with nbgrader metadata). Every chapter is read
    and checked before anything is written.
    """
    src_dir = Path(src_dir)
    if not src_dir.is_dir():
        raise NotebookError(f"source folder {src_dir} does not exist or is not a folder")
    course = check_output_dir(src_dir, course_dir, what="course folder")
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
    if config.exists() and not config.read_text(encoding="utf-8").startswith(CONFIG_HEADER):
        raise NotebookError(f"{config} exists and was not written by coursekit.course; move it away first")
    make_dirs(course, src_dir)
    atomic_write_text(config, nbgrader_config_text())
    for stem, nb, _ in plan:
        folder = course / "source" / stem
        make_dirs(folder, src_dir)
        atomic_write_text(folder / f"{stem}.ipynb", nbformat.writes(nb) + "\n")
    if generate:
        for stem, _, _ in plan:
            run_nbgrader(course, "generate_assignment", stem, "--force")
    return {stem: points for stem, _, points in plan}


def autograde(course_dir: str | Path, assignments: list[str] | None = None,
              student: str | None = None) -> Timing:
    """`nbgrader autograde` every submission (or one student's) of the assignments; return the time taken.

    assignments: chapter names; by default every chapter with at least one submission.
    """
    import resource

    course = Path(course_dir)
    if not (course / "nbgrader_config.py").is_file():
        raise NotebookError(f"{course} has no nbgrader_config.py: run `make course` first")
    submitted = {p.name for p in course.glob("submitted/*/*") if p.is_dir()}
    if assignments is None:  # every chapter that has submissions
        assignments = sorted(p.name for p in (course / "source").iterdir() if p.is_dir() and p.name in submitted)
        if not assignments:
            raise NotebookError(f"no submissions in {course / 'submitted'}: put each as "
                                "submitted/<student>/<chapter>/<chapter>.ipynb")
    missing = [a for a in assignments if a not in submitted]
    if missing:
        raise NotebookError(f"no submissions of {', '.join(missing)} in {course / 'submitted'}/<student>/")
    extra = ["--student", student] if student else []

    def cpu() -> float:
        usage = resource.getrusage(resource.RUSAGE_CHILDREN)  # nbgrader and the kernels it waited for
        return usage.ru_utime + usage.ru_stime

    start, start_cpu = time.perf_counter(), cpu()
    for name in assignments:
        run_nbgrader(course, "autograde", name, "--force", *extra)
    return Timing(wall=time.perf_counter() - start, cpu=cpu() - start_cpu)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv.pop(0) if argv and argv[0] in ("build", "autograde", "scores", "grade") else "build"
    parser = argparse.ArgumentParser(prog=f"python -m coursekit.course {command}",
                                     description=__doc__.split("\n")[0])
    if command == "build":
        parser.add_argument("src_dir", help="folder with the chapter notebooks, e.g. book")
        parser.add_argument("course_dir", help="the nbgrader course folder to write, e.g. course")
        parser.add_argument("--chapter", action="append", help="only this chapter (repeatable)")
        parser.add_argument("--no-generate", action="store_true", help="write source/ only")
    else:
        parser.add_argument("course_dir", help="the nbgrader course folder, e.g. course")
    if command == "autograde":
        parser.add_argument("assignments", nargs="*", help="chapters to grade (default: all)")
        parser.add_argument("--student", help="only this student's submission")
    if command == "grade":
        parser.add_argument("assignment", help="the chapter, e.g. 02_sparse_autoencoders")
        parser.add_argument("student", help="the student id (folder name under submitted/)")
        parser.add_argument("grade_id", help="the answer cell, e.g. ex-sparse-1-answer")
        parser.add_argument("points", type=float, help="points given")
    args = parser.parse_args(argv)
    try:
        if command == "build":
            points = write_course(args.src_dir, args.course_dir, args.chapter, not args.no_generate)
            if not points:
                print(f"no chapter in {args.src_dir} carries nbgrader metadata", file=sys.stderr)
                return 1
            for stem, p in points.items():
                print(f"{stem}: {p.auto:g} points autograded, {p.manual:g} by hand")
            print(f"course written to {Path(args.course_dir)}; release versions in "
                  f"{Path(args.course_dir) / 'release'}; submissions go to submitted/<student>/<chapter>/")
        elif command == "autograde":
            timing = autograde(args.course_dir, args.assignments or None, args.student)
            print(format_scores(read_scores(args.course_dir)))
            print(f"autograded in {timing.wall:.0f} s ({timing.cpu:.0f} s of CPU time)")
        elif command == "grade":
            set_manual_score(args.course_dir, args.assignment, args.student, args.grade_id, args.points)
            print(format_scores([r for r in read_scores(args.course_dir) if r.student == args.student]))
        else:
            print(format_scores(read_scores(args.course_dir)))
    except (NotebookError, RuntimeError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
