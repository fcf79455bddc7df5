"""The nbgrader course, end to end with the real nbgrader: generate, submit, autograde, read the gradebook.

A small chapter in the book's exercise layout (coursekit.example_chapter) always runs; the real
chapters 02 and 04 run as soon as they carry nbgrader metadata. For each: the full solution gets every
autograded point, the untouched release 0, a plausible wrong answer (KL with its arguments swapped,
a missing factor 1/2, ...) fewer than full; on the example chapter also a submission that calls the
library's reference, which the hidden tests give 0. Each autograde is timed: one submission <= 60 s of CPU time with
FUNML_GRADING=1 (nbgrader and its kernel; on a shared machine the wall clock also counts the neighbours).

    .venv/bin/python -m pytest tests/test_course.py -q                 # fixture + converted chapters
    FUNML_COURSE_RUNS=fixture .venv/bin/python -m pytest tests/test_course.py   # fixture only
"""
from __future__ import annotations

import copy
import os
import re
from pathlib import Path

import nbformat
import pytest

from coursekit import course
from coursekit.course import (CELL_TIMEOUT, CONFIG_HEADER, Points, autograde, check_grading_metadata,
                              read_scores, write_course)
from coursekit.example_chapter import example_chapter
from coursekit.homework import student_version
from coursekit.safe_io import NotebookError

ROOT = Path(__file__).resolve().parents[1]
SECONDS_PER_SUBMISSION = 60.0
RUNS = os.environ.get("FUNML_COURSE_RUNS", "all")  # "fixture": skip the real chapters

pytest.importorskip("nbgrader")


# ------------------------------------------------------------------------------ building submissions
def _grade_id(cell) -> str | None:
    return cell.get("metadata", {}).get("nbgrader", {}).get("grade_id")


def _is_answer(cell) -> bool:
    return bool(cell.get("metadata", {}).get("nbgrader", {}).get("solution"))


def strip_markers(source: str) -> str:
    """An answer as a student would hand it in: the solution without nbgrader's marker lines."""
    return "\n".join(line for line in source.split("\n") if "BEGIN SOLUTION" not in line
                     and "END SOLUTION" not in line)


def full_solution(source: nbformat.NotebookNode, release: nbformat.NotebookNode) -> nbformat.NotebookNode:
    answers = {_grade_id(c): strip_markers(c.source) for c in source.cells if _is_answer(c)}
    nb = copy.deepcopy(release)
    for cell in nb.cells:
        if _is_answer(cell):
            cell.source = answers[_grade_id(cell)]
    return nb


def replace_function(nb: nbformat.NotebookNode, name: str, definition: str) -> nbformat.NotebookNode:
    """Append `definition` to the answer cell that defines `name` (the student's last word on it)."""
    nb = copy.deepcopy(nb)
    cells = [c for c in nb.cells if _is_answer(c) and re.search(rf"^def {name}\(", c.source, re.M)]
    assert cells, f"no answer cell defines {name}"
    cells[0].source += "\n\n\n" + definition
    return nb


def submit(course_dir: Path, student: str, assignment: str, nb: nbformat.NotebookNode) -> None:
    folder = course_dir / "submitted" / student / assignment
    folder.mkdir(parents=True, exist_ok=True)
    nbformat.write(nb, folder / f"{assignment}.ipynb")


KL_SWAPPED = '''def kl_divergence(rho, rho_hat):
    q = rho_hat.clamp(1e-6, 1 - 1e-6)
    return q * torch.log(q / rho) + (1 - q) * torch.log((1 - q) / (1 - rho))'''
KL_DELEGATES = '''from funml_lib import kl_sparsity as _library_kl


def kl_divergence(rho, rho_hat):
    return _library_kl(rho, rho_hat)'''
# per chapter: function -> (a plausible wrong answer, an answer that delegates to the library)
CASES = {
    "02_sparse_autoencoders": {"kl_divergence": (KL_SWAPPED, KL_DELEGATES)},
    "04_variational_autoencoders": {
        "gaussian_kl_closed_form": (
            "def gaussian_kl_closed_form(mu, logvar):\n"
            "    return (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)",  # the 1/2 is missing
            "from funml_lib import gaussian_kl as _library_kl\n\n\n"
            "def gaussian_kl_closed_form(mu, logvar):\n    return _library_kl(mu, logvar)"),
        "reparameterize": (
            "def reparameterize(mu, logvar):\n"
            "    return mu + logvar.exp() * torch.randn_like(mu)",  # the variance, not sigma
            None),
    },
}


def grade_course(tmp: Path, src_dir: Path, stem: str, cases: dict, delegate: bool = True) -> dict:
    """Build the course for one chapter, submit full / release / wrong (/ delegating), autograde, score."""
    course_dir = tmp / "course"
    points = write_course(src_dir, course_dir, chapters=[stem])[stem]
    source = nbformat.read(course_dir / "source" / stem / f"{stem}.ipynb", as_version=4)
    release = nbformat.read(course_dir / "release" / stem / f"{stem}.ipynb", as_version=4)
    full = full_solution(source, release)
    wrong, delegating = full, full
    for name, (bad, delegating_source) in cases.items():
        wrong = replace_function(wrong, name, bad)
        if delegate and delegating_source:
            delegating = replace_function(delegating, name, delegating_source)
    submissions = {"full": full, "release": release, "wrong": wrong}
    if delegating is not full:
        submissions["delegating"] = delegating
    for student, nb in submissions.items():
        submit(course_dir, student, stem, nb)
    timing = autograde(course_dir, [stem])
    scores = {row.student: row for row in read_scores(course_dir) if row.assignment == stem}
    return {"course": course_dir, "points": points, "scores": scores, "seconds": timing.wall,
            "per_submission": timing.wall / len(submissions), "cpu_per_submission": timing.cpu / len(submissions),
            "release": release, "source": source, "load": os.getloadavg()[0]}


def check_scores(result: dict) -> None:
    scores, points = result["scores"], result["points"]
    full, release, wrong = scores["full"], scores["release"], scores["wrong"]
    assert points.auto > 0
    assert full.auto_max == points.auto and full.auto == points.auto, f"full solution: {full}"
    assert full.manual_max == points.manual
    assert release.total == 0 and release.auto == 0 and release.needs_manual == 0, f"release: {release}"
    assert wrong.auto < full.auto, f"wrong answer: {wrong}"
    if "delegating" in scores:
        assert scores["delegating"].auto < full.auto, f"delegating answer: {scores['delegating']}"


def report(name: str, result: dict) -> None:
    p: Points = result["points"]
    print(f"\n{name}: {p.auto:g} points autograded, {p.manual:g} by hand; {len(result['scores'])} "
          f"submissions autograded in {result['seconds']:.1f} s ({result['per_submission']:.1f} s each, "
          f"{result['cpu_per_submission']:.1f} s CPU each, load {result['load']:.1f}); "
          + ", ".join(f"{s}: {r.auto:g}/{r.auto_max:g}" for s, r in result["scores"].items()))


# ----------------------------------------------------------------------------------- the fixture
@pytest.fixture(scope="module")
def fixture_course(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fixture")
    book = tmp / "book"
    book.mkdir()
    nbformat.write(example_chapter(), book / "01_demo.ipynb")
    cases = {"kl_divergence": (KL_SWAPPED, KL_DELEGATES)}
    return grade_course(tmp, book, "01_demo", cases)


def test_fixture_scores_full_release_wrong_delegating(fixture_course):
    report("example chapter", fixture_course)
    check_scores(fixture_course)
    scores = fixture_course["scores"]
    assert scores["full"].auto == 3 and scores["full"].needs_manual == 1  # the prose answer waits for you
    assert scores["wrong"].auto == 0 and scores["delegating"].auto == 0
    assert fixture_course["cpu_per_submission"] <= SECONDS_PER_SUBMISSION


def test_release_is_the_student_version(fixture_course):
    ours, _ = student_version(fixture_course["source"])
    release = fixture_course["release"]
    assert [c.source for c in release.cells] == [c.source for c in ours.cells]
    assert [c.cell_type for c in release.cells] == [c.cell_type for c in ours.cells]


def test_config_has_timeout_grading_switch_and_no_enforce_metadata_escape(fixture_course):
    text = (fixture_course["course"] / "nbgrader_config.py").read_text()
    assert text.startswith(CONFIG_HEADER)
    assert f"c.Execute.timeout = {CELL_TIMEOUT}" in text
    assert 'os.environ["FUNML_GRADING"] = "1"' in text
    assert "enforce_metadata" not in text  # generate_assignment validated with nbgrader's own checks


def test_gradebook_scores_command(fixture_course, capsys):
    assert course.main(["scores", str(fixture_course["course"])]) == 0
    out = capsys.readouterr().out
    assert re.search(r"01_demo\s+full\s+3/3", out) and re.search(r"01_demo\s+release\s+0/3", out)


def test_hand_graded_answer_recorded_without_a_gui(fixture_course, capsys):
    course_dir = str(fixture_course["course"])
    assert course.main(["grade", course_dir, "01_demo", "full", "ex-demo-1-answer", "1"]) == 0
    row = next(r for r in read_scores(course_dir) if r.student == "full")
    assert (row.total, row.needs_manual) == (4, 0)
    assert course.main(["grade", course_dir, "01_demo", "full", "ex-demo-1-answer", "5"]) == 2
    assert "points must be in [0, 1]" in capsys.readouterr().err


def test_plain_nbgrader_in_the_course_folder_finds_alembic(tmp_path):
    # the first-use failure: .venv/bin/nbgrader without .venv/bin on PATH ('alembic' not found)
    import subprocess
    import sys

    book = tmp_path / "book"
    book.mkdir()
    nbformat.write(example_chapter(), book / "01_demo.ipynb")
    write_course(book, tmp_path / "course", generate=False)
    nbgrader = Path(os.path.dirname(sys.executable)) / "nbgrader"
    env = {k: v for k, v in os.environ.items() if k not in ("PATH", "VIRTUAL_ENV")}
    env["PATH"] = "/usr/bin:/bin"
    run = subprocess.run([str(nbgrader), "db", "assignment", "list"], cwd=tmp_path / "course", env=env,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr[-1500:]
    assert (tmp_path / "course" / "gradebook.db").is_file()


def test_nbgrader_runs_from_this_environment():
    import sys

    env = course._env()
    assert env["PATH"].split(os.pathsep)[0] == os.path.dirname(sys.executable)
    assert env["FUNML_GRADING"] == "1"
    assert (Path(os.path.dirname(sys.executable)) / "alembic").exists()


# ----------------------------------------------------------------------------- metadata checks
def _cell_index(nb, grade_id: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if _grade_id(c) == grade_id)


def test_example_chapter_points():
    assert check_grading_metadata(example_chapter()) == Points(
        auto=3, manual=1, cells=("ex-demo-1-answer", "ex-demo-2-answer", "ex-demo-2-tests"))


def _tests_inside_gates(nb):
    i = _cell_index(nb, "ex-demo-2-tests")
    nb.cells.insert(i - 1, nb.cells.pop(i))  # before {solution-end}


@pytest.mark.parametrize("change, message", [
    (lambda nb: nb.cells[_cell_index(nb, "ex-demo-2-tests")].metadata.nbgrader.update(locked=False),
     "an autograder-tests cell must be locked"),
    (lambda nb: nb.cells[_cell_index(nb, "ex-demo-2-tests")].metadata.nbgrader.update(points=0),
     "a graded cell needs \"points\" > 0"),
    (lambda nb: nb.cells[_cell_index(nb, "ex-demo-1-answer")].metadata.nbgrader.update(grade_id="ex-demo-2-tests"),
     "grade_id 'ex-demo-2-tests' is also used by cell"),
    (lambda nb: nb.cells[_cell_index(nb, "ex-demo-2-tests")].metadata.nbgrader.update(schema_version=1),
     "\"schema_version\": 3"),
    (_tests_inside_gates, "sits inside {solution-start}/{solution-end}"),
    (lambda nb: setattr(nb.cells[_cell_index(nb, "ex-demo-2-tests")], "source",
                        "### BEGIN SOLUTION\nx = 1\n### END SOLUTION"), "without nbgrader metadata \"solution\": true"),
])
def test_bad_grading_metadata_is_named(change, message):
    nb = example_chapter()
    change(nb)
    with pytest.raises(NotebookError, match=r"ch\.ipynb, cell \d+.*" + re.escape(message)):
        check_grading_metadata(nb, "ch.ipynb")


def test_course_folder_inside_the_book_or_a_foreign_config_is_refused(tmp_path):
    book = tmp_path / "book"
    book.mkdir()
    nbformat.write(example_chapter(), book / "01_demo.ipynb")
    with pytest.raises(NotebookError, match="source folder"):
        write_course(book, book / "course", generate=False)
    (tmp_path / "course").mkdir()
    (tmp_path / "course" / "nbgrader_config.py").write_text("c = get_config()\n")
    with pytest.raises(NotebookError, match="was not written by coursekit.course"):
        write_course(book, tmp_path / "course", generate=False)
    assert (tmp_path / "course" / "nbgrader_config.py").read_text() == "c = get_config()\n"


def test_cli_writes_source_without_generating(tmp_path, capsys):
    book = tmp_path / "book"
    book.mkdir()
    nbformat.write(example_chapter(), book / "01_demo.ipynb")
    nbformat.write(nbformat.v4.new_notebook(), book / "00_intro.ipynb")  # no exercises: not a course
    assert course.main([str(book), str(tmp_path / "course"), "--no-generate"]) == 0
    assert "01_demo: 3 points autograded, 1 by hand" in capsys.readouterr().out
    assert sorted(p.name for p in (tmp_path / "course" / "source").iterdir()) == ["01_demo"]
    assert course.main(["autograde", str(tmp_path / "nowhere")]) == 2
    assert course.main(["autograde", str(tmp_path / "course")]) == 2  # nothing submitted yet
    assert "no submissions in" in capsys.readouterr().err


# ----------------------------------------------------------------------------- the real chapters
def _converted(stem: str) -> bool:
    path = ROOT / "book" / f"{stem}.ipynb"
    return path.is_file() and '"nbgrader"' in path.read_text(encoding="utf-8")


@pytest.mark.parametrize("stem", sorted(CASES))
def test_real_chapter_grades_as_designed(stem, tmp_path):
    if RUNS == "fixture":
        pytest.skip("FUNML_COURSE_RUNS=fixture")
    if not _converted(stem):
        pytest.skip(f"{stem} carries no nbgrader metadata yet")
    # the three submissions of the issue; the delegating one runs on the example chapter (and can be
    # added here with delegate=True: 04 then scores 3 of 6, the KL exercise's hidden test failing)
    result = grade_course(tmp_path, ROOT / "book", stem, CASES[stem], delegate=False)
    report(stem, result)
    check_scores(result)
    # CPU seconds of nbgrader and its kernel: what a submission costs on an idle 2-core machine (the wall
    # clock of a shared machine also measures the neighbours; it is printed by report above)
    assert result["cpu_per_submission"] <= SECONDS_PER_SUBMISSION, (
        f"{stem}: {result['cpu_per_submission']:.0f} s of CPU per submission with FUNML_GRADING=1")
