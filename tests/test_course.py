"""The nbgrader course end to end, with the real nbgrader 0.9.6 and the real grader (coursekit.grading).

One course from the example chapter (coursekit.example_chapter) gets a class of honest, broken and
dishonest submissions, graded with JOBS=1; the batch must finish and grade every honest one, name
every broken one with its reason, and keep the gradebook intact. Chapters 2 and 4 are graded with
JOBS=2 (full solution, wrong answer). Dask runs the same jobs on a LocalCluster (2 processes):
the grades equal JOBS=1's, and a worker killed in the middle of a job loses nothing and doubles
nothing. The display run (executing the whole notebook for the hand grader) is off everywhere
except where the outputs are the point: it costs CPU and never decides points.

    .venv/bin/python -m pytest tests/test_course.py -q
    FUNML_COURSE_RUNS=fixture .venv/bin/python -m pytest tests/test_course.py   # no real chapters
"""
from __future__ import annotations

import copy
import json
import os
import re
import stat
import subprocess
import sys
import zipfile
from pathlib import Path

import nbformat
import pytest

from coursekit import course
from coursekit.course import (CONFIG_HEADER, Points, autograde, check_grading_metadata, read_scores,
                              write_course)
from coursekit.example_chapter import example_chapter
from coursekit.grading import batch, bridge
from coursekit.homework import student_version
from coursekit.safe_io import NotebookError

ROOT = Path(__file__).resolve().parents[1]
RUNS = os.environ.get("FUNML_COURSE_RUNS", "all")  # "fixture": skip the real chapters
RUBRIC = "1 point: both penalties are 0, because KL sees only the mean activation."

pytest.importorskip("nbgrader")


# ------------------------------------------------------------------------------ building submissions
def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _cell(nb, grade_id: str):
    return next(c for c in nb.cells if _meta(c).get("grade_id") == grade_id)


def strip_markers(source: str) -> str:
    """An answer as a student would hand it in: the solution without nbgrader's marker lines."""
    return "\n".join(line for line in source.split("\n") if "BEGIN SOLUTION" not in line
                     and "END SOLUTION" not in line)


def full_solution(source, release):
    answers = {_meta(c)["grade_id"]: strip_markers(c.source) for c in source.cells if _meta(c).get("solution")}
    nb = copy.deepcopy(release)
    for cell in nb.cells:
        if _meta(cell).get("solution"):
            cell.source = answers[_meta(cell)["grade_id"]]
    return nb


def replace_function(nb, name: str, definition: str):
    """Append `definition` to the answer cell that defines `name` (the student's last word on it)."""
    nb = copy.deepcopy(nb)
    cells = [c for c in nb.cells if _meta(c).get("solution") and re.search(rf"^def {name}\(", c.source, re.M)]
    assert cells, f"no answer cell defines {name}"
    cells[0].source += "\n\n\n" + definition
    return nb


def submit(course_dir: Path, student: str, chapter: str, nb, name: str | None = None) -> Path:
    folder = course_dir / "submitted" / student / chapter
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / (name or f"{chapter}.ipynb")
    if isinstance(nb, (bytes, str)):
        path.write_bytes(nb if isinstance(nb, bytes) else nb.encode())
    else:
        nbformat.write(nb, path)
    return path


KL_SWAPPED = '''def kl_divergence(rho, rho_hat):
    q = rho_hat.clamp(1e-6, 1 - 1e-6)
    return q * torch.log(q / rho) + (1 - q) * torch.log((1 - q) / (1 - rho))'''
WRONG = {
    "02_sparse_autoencoders": {"kl_divergence": KL_SWAPPED},
    "04_variational_autoencoders": {
        "gaussian_kl_closed_form": "def gaussian_kl_closed_form(mu, logvar):\n"
                                   "    return (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)"},
}


def dishonest(course_dir: Path) -> str:
    """An answer cell that attacks the course from inside the grader: gradebook, course root, a
    process left behind; then returns a garbage answer."""
    db, planted = course_dir / "gradebook.db", course_dir / "PLANTED.txt"
    return f'''import os, sqlite3, subprocess
try:
    con = sqlite3.connect({str(db)!r})
    con.execute("UPDATE grade SET auto_score = 0, manual_score = 0")
    con.commit()
except Exception:
    pass
try:
    open({str(planted)!r}, "w").write("owned")
except Exception:
    pass
try:
    subprocess.Popen(["sleep", "4242"], start_new_session=True)
except Exception:
    pass


def kl_divergence(rho, rho_hat):
    return rho_hat * 0'''


# ----------------------------------------------------------------------------------- the fixture
def _example_book(tmp: Path) -> Path:
    book = tmp / "book"
    book.mkdir()
    nb = example_chapter()
    _cell(nb, "ex-demo-1-answer").metadata["funml"] = {"rubric": RUBRIC}
    nbformat.write(nb, book / "01_demo.ipynb")
    return book


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The example chapter's course with a class of 8 submissions, autograded with JOBS=1."""
    tmp = tmp_path_factory.mktemp("demo")
    course_dir = tmp / "course"
    points = write_course(_example_book(tmp), course_dir)["01_demo"]
    source = nbformat.read(course_dir / "source" / "01_demo" / "01_demo.ipynb", as_version=4)
    release = nbformat.read(course_dir / "release" / "01_demo" / "01_demo.ipynb", as_version=4)
    full = full_solution(source, release)
    submit(course_dir, "full", "01_demo", full)  # also the earlier student an attack targets
    submit(course_dir, "release", "01_demo", release)
    submit(course_dir, "wrong", "01_demo", replace_function(full, "kl_divergence", KL_SWAPPED))
    cheat = copy.deepcopy(full)
    _cell(cheat, "ex-demo-2-answer").source = dishonest(course_dir)
    submit(course_dir, "zcheat", "01_demo", cheat)  # graded after full
    dup = copy.deepcopy(full)
    i = dup.cells.index(_cell(dup, "ex-demo-2-answer"))
    dup.cells.insert(i + 1, copy.deepcopy(dup.cells[i]))  # an honest copy-paste of the answer cell
    submit(course_dir, "duplicated", "01_demo", dup)
    schema = copy.deepcopy(full)
    for cell in schema.cells:
        if _meta(cell):
            cell.metadata.nbgrader["schema_version"] = 1
    submit(course_dir, "schema", "01_demo", schema)
    text = nbformat.writes(full)
    submit(course_dir, "truncated", "01_demo", text[: len(text) // 2])
    deleted = copy.deepcopy(full)
    deleted.cells.remove(_cell(deleted, "ex-demo-2-tests"))
    submit(course_dir, "deleted", "01_demo", deleted)
    # a renamed file and other layout slips: test_find_submissions_tolerates_layout_slips
    report = autograde(course_dir, jobs=1, display=False, verbose=False)
    scores = {r.student: r for r in read_scores(course_dir)}
    return {"course": course_dir, "points": points, "scores": scores, "report": report,
            "source": source, "release": release, "full": full}


def test_the_class_is_graded_as_designed(demo):
    s, p = demo["scores"], demo["points"]
    assert p == Points(auto=5, manual=1, cells=("ex-demo-1-answer", "ex-demo-2-answer", "ex-demo-2-tests",
                                                "ex-demo-3-answer", "ex-demo-3-tests"))
    assert sorted(s) == ["deleted", "duplicated", "full", "release", "schema", "truncated", "wrong",
                         "zcheat"]
    # every honest submission is graded in full, whatever slips its file has
    for student in ("full", "duplicated", "schema", "deleted"):
        assert (s[student].auto, s[student].auto_max) == (5, 5), (student, s[student])
        assert s[student].needs_manual == 1 and s[student].manual_max == 1  # the prose answer waits
    assert (s["release"].auto, s["release"].needs_manual, s["release"].total) == (0, 0, 0)
    assert s["wrong"].auto == 2  # the number exercise right, the swapped KL wrong
    assert s["truncated"].auto == 0 and s["truncated"].needs_manual == 0
    assert s["zcheat"].auto <= s["wrong"].auto


def test_every_odd_submission_gets_one_line_naming_student_and_reason(demo):
    lines = demo["report"].lines
    expected = {"truncated": "not a notebook: invalid JSON", "duplicated": "appears 2 times",
                "schema": "schema_version", "deleted": "deleted; restored from the source"}
    for student, reason in expected.items():
        mine = [ln for ln in lines if ln.startswith(f"{student} / 01_demo: ")]
        assert len(mine) == 1 and reason in mine[0], (student, lines)
        assert f"{student}: 01_demo:" not in mine[0]  # named once, at the start
    assert not [ln for ln in lines if ln.startswith(("full /", "wrong /", "release /"))]


def test_the_dishonest_submission_changed_nothing(demo):
    course_dir = demo["course"]
    assert not (course_dir / "PLANTED.txt").exists()
    assert demo["scores"]["full"].auto == 5  # graded before the attack, still intact
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "sleep 4242" not in ps


def test_staged_not_submitted_and_verdicts_in_the_gradebook(demo):
    course_dir = demo["course"]
    # the instructor's collected files stay as they were handed in
    raw = (course_dir / "submitted" / "schema" / "01_demo" / "01_demo.ipynb").read_text()
    assert '"schema_version": 1' in raw
    graded = nbformat.read(course_dir / "autograded" / "full" / "01_demo" / "01_demo.ipynb", as_version=4)
    tests = _cell(graded, "ex-demo-2-tests")
    assert tests.outputs[-1]["output_type"] == "execute_result" and tests.outputs[-1]["data"]["text/plain"] == "3"
    assert any(bridge.GRADER_PREFIX in o.get("text", "") for o in tests.outputs)
    scores = json.loads((course_dir / "grading" / "results" / "01_demo" / "full" / "scores.json").read_text())
    assert scores["tests"]["ex-demo-2-tests"]["points"] == 3 and scores["student"] == "full"


def test_config_replaces_execute_and_sets_no_grading_switch(demo):
    text = (demo["course"] / "nbgrader_config.py").read_text()
    assert text.startswith(CONFIG_HEADER)
    assert "c.Autograde.autograde_preprocessors = autograde_preprocessors()" in text
    assert "FUNML_GRADING" not in text and "Execute.timeout" not in text
    assert "FUNML_GRADING" not in course._env()
    assert bridge.BridgeVerdicts in bridge.autograde_preprocessors()
    assert not [p for p in bridge.autograde_preprocessors() if p.__name__ == "Execute"]


def test_grading_secret_is_private_and_kept(demo, tmp_path):
    secret = demo["course"] / ".grading_secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert len(secret.read_text().strip()) == 64
    before = secret.read_text()
    course.ensure_secret(demo["course"])
    assert secret.read_text() == before


def test_feedback_shows_verdicts_and_rubric_never_probes(demo):
    course_dir = demo["course"]
    course.run_nbgrader(course_dir, "generate_feedback", "01_demo", "--student", "wrong", "--force")
    html = (course_dir / "feedback" / "wrong" / "01_demo" / "01_demo.html").read_text()
    assert "Course grader: 0/3." in html and "Course grader: 2/2." in html
    assert RUBRIC.split(":")[1].strip()[:30] in html
    secret = (course_dir / ".grading_secret").read_text().strip()
    assert secret not in html and "HIDDEN TESTS" not in html and "make_calls" not in html


def test_scores_command_shows_given_points(demo, capsys):
    assert course.main(["scores", str(demo["course"])]) == 0
    out = capsys.readouterr().out
    assert re.search(r"01_demo\s+full\s+5/5\s+0/1\s+5/6\s+1 answer cell", out), out
    assert re.search(r"01_demo\s+release\s+0/5\s+0/1\s+0/6\s+-", out), out


def test_grade_with_a_typo_lists_the_valid_ids(demo, capsys):
    c = str(demo["course"])
    assert course.main(["grade", c, "01_dem", "full", "ex-demo-1-answer", "1"]) == 2
    assert "no chapter '01_dem'; valid chapters: 01_demo" in capsys.readouterr().err
    assert course.main(["grade", c, "01_demo", "fulll", "ex-demo-1-answer", "1"]) == 2
    err = capsys.readouterr().err
    assert "no graded submission of 01_demo by 'fulll'; students with one: deleted, duplicated, " in err
    assert course.main(["grade", c, "01_demo", "full", "ex-demo-1-answr", "1"]) == 2
    err = capsys.readouterr().err
    assert "valid grade ids: ex-demo-1-answer (by hand), ex-demo-2-tests (autograded" in err


def test_hand_grades_survive_a_second_autograde(demo, capsys):
    c = demo["course"]
    assert course.main(["grade", str(c), "01_demo", "full", "ex-demo-1-answer", "1"]) == 0
    assert course.main(["grade", str(c), "01_demo", "full", "ex-demo-1-answer", "5"]) == 2
    assert "points must be in [0, 1]" in capsys.readouterr().err
    before = {r.student: r for r in read_scores(c)}
    assert (before["full"].manual, before["full"].needs_manual, before["full"].total) == (1, 0, 6)
    report = autograde(c, ["01_demo"], student="full", display=False, verbose=False)
    after = {r.student: r for r in read_scores(c)}
    assert after == before and report.graded == 1
    # the student's file changes: the point stays given (as nbgrader's export counts it) and waits
    path = c / "submitted" / "full" / "01_demo" / "01_demo.ipynb"
    original = path.read_bytes()
    try:
        path.write_bytes(original.replace(b'"cells": [', b'"cells": [{"cell_type": "markdown", '
                                          b'"metadata": {}, "source": "late edit"}, ', 1))
        report = autograde(c, ["01_demo"], student="full", display=False, verbose=False)
        assert any("full/01_demo: the submission changed" in line for line in report.lines)
        changed = {r.student: r for r in read_scores(c)}["full"]
        assert (changed.manual, changed.needs_manual, changed.total) == (1, 1, 6)
    finally:
        path.write_bytes(original)


def test_zip_collect_sorts_downloads_into_submitted(demo):
    c = demo["course"]
    archive = c / "downloaded" / "01_demo" / "archive"
    archive.mkdir(parents=True)
    text = nbformat.writes(demo["release"])
    with zipfile.ZipFile(archive / "downloads.zip", "w") as z:
        z.writestr("ada_01_demo.ipynb", text)
        z.writestr("Grace Hopper_4711_assignsubmission_file_01_demo.ipynb", text)
    try:
        course.run_nbgrader(c, "zip_collect", "01_demo")
        assert (c / "submitted" / "ada" / "01_demo" / "01_demo.ipynb").read_text() == text
        assert (c / "submitted" / "4711" / "01_demo" / "01_demo.ipynb").read_text() == text
    finally:
        for student in ("ada", "4711"):
            if (c / "submitted" / student).exists():
                import shutil
                shutil.rmtree(c / "submitted" / student)


# ---------------------------------------------------------------------- Dask: same jobs, a cluster
def test_dask_grades_like_one_worker_and_survives_a_killed_worker(demo, tmp_path):
    pytest.importorskip("distributed")
    from coursekit.grading.dask_jobs import run_dask

    c = demo["course"]
    secret = (c / ".grading_secret").read_text().strip()
    subs, _ = batch.find_submissions(c / "submitted", ["01_demo"])
    picked = [s for s in subs if s.student in ("full", "wrong")]
    payloads = [batch.make_payload(s, c / "release" / "01_demo" / "01_demo.ipynb", secret, display=False)
                for s in picked]
    marker = tmp_path / "died-once"

    def job(payload):  # the first attempt at "wrong" kills its own worker process, mid-job
        import os
        import signal
        from coursekit.grading.batch import run_job
        if payload["student"] == "wrong" and not os.path.exists(marker):
            open(marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return run_job(payload)

    results = run_dask(payloads + payloads[:1], workers=2, job=job)  # "full" handed in twice
    assert marker.exists()
    expected = {(p["chapter"], p["student"]): p["sha256"] for p in payloads}
    merged, missing, notes = batch.merge_results(expected, results)
    assert missing == [] and notes == [] and sorted(merged) == [("01_demo", "full"), ("01_demo", "wrong")]
    local = {s: json.loads((c / "grading" / "results" / "01_demo" / s / "scores.json").read_text())
             for s in ("full", "wrong")}
    for (_, student), result in merged.items():
        got = {g: t["points"] for g, t in result["scores"]["tests"].items()}
        assert got == {g: t["points"] for g, t in local[student]["tests"].items()}, student


def test_merge_keeps_one_result_per_submission():
    expected = {("c", "ada"): "a1", ("c", "bob"): "b1", ("c", "cy"): "c1"}

    def res(student, sha, ok=True, points=1.0):
        return {"chapter": "c", "student": student, "sha256": sha,
                "scores": {"ok": ok, "tests": {"t": {"points": points}}}}

    merged, missing, notes = batch.merge_results(expected, [
        res("ada", "a1", ok=False, points=0), res("ada", "a1"),  # a retry that succeeded
        res("bob", "b1"), res("bob", "b1"),                      # a job that ran twice
        res("bob", "b0"),                                        # an older file's result
        res("dan", "d1")])                                       # nobody's
    assert sorted(merged) == [("c", "ada"), ("c", "bob")] and missing == [("c", "cy")]
    assert merged[("c", "ada")]["scores"]["ok"] is True
    assert notes == ["bob/c: a result for another version of the file; dropped",
                     "dan/c: a result for no submission of this run; dropped"]


def test_find_submissions_tolerates_layout_slips(tmp_path):
    sub = tmp_path / "submitted"
    (sub / "ada" / "01_x").mkdir(parents=True)
    (sub / "ada" / "01_x" / "01_x.ipynb").write_text("{}")
    (sub / "bob").mkdir()
    (sub / "bob" / "01_x.ipynb").write_text("{}")
    (sub / "cy" / "01_x").mkdir(parents=True)
    (sub / "cy" / "99_nope").mkdir()
    (sub / "cy" / "notes.txt").write_text("")
    found, problems = batch.find_submissions(sub, ["01_x"])
    assert [(s.student, s.path.name if s.path else None) for s in found] == [
        ("ada", "01_x.ipynb"), ("bob", "01_x.ipynb"), ("cy", None)]
    assert found[1].notes == ["wrong folder layout: bob/01_x.ipynb belongs in bob/01_x/01_x.ipynb"]
    assert found[2].notes == [f"no notebook in {sub / 'cy' / '01_x'}"]
    assert problems == ["cy: folder '99_nope' is no chapter of this course (chapters: 01_x); ignored",
                        "cy: notes.txt is not a chapter notebook (expected cy/<chapter>/<chapter>.ipynb); ignored"]


def test_bridge_outputs_give_nbgrader_partial_points_and_ignore_stderr():
    from nbgrader.utils import determine_grade

    cell = nbformat.v4.new_code_cell("check()")
    cell.metadata["nbgrader"] = {"grade": True, "solution": False, "grade_id": "t", "points": 3,
                                 "locked": True, "schema_version": 3}
    shown = [nbformat.v4.new_output("stream", name="stderr", text="a warning\n"),
             nbformat.v4.new_output("error", ename="CheckFailed", evalue="no", traceback=[]),
             nbformat.v4.new_output("execute_result", data={"text/plain": "3"})]
    cell.outputs = bridge.verdict_outputs(1.5, 3, "the KL is off by a factor 2", shown)
    assert determine_grade(cell) == (1.5, 3.0)
    assert [o["output_type"] for o in cell.outputs] == ["stream", "stream", "display_data", "stream",
                                                        "execute_result"]
    assert cell.outputs[3]["text"] == "Course grader: 1.5/3. the KL is off by a factor 2\n"
    cell.outputs = bridge.verdict_outputs(7, 3, "", [])  # never more than the cell's points
    assert determine_grade(cell) == (3.0, 3.0)


# ----------------------------------------------------------------------------- make course
def test_make_course_refuses_to_overwrite_an_edit_and_force_keeps_a_copy(tmp_path, capsys):
    book = _example_book(tmp_path)
    c = tmp_path / "course"
    assert course.main([str(book), str(c), "--no-generate"]) == 0
    assert "01_demo: 5 points autograded, 1 by hand" in capsys.readouterr().out
    assert course.main([str(book), str(c), "--no-generate"]) == 0  # nothing edited: fine
    edited = c / "source" / "01_demo" / "01_demo.ipynb"
    edited.write_text(edited.read_text().replace("An example chapter", "My example chapter"))
    assert course.main([str(book), str(c), "--no-generate"]) == 2
    err = capsys.readouterr().err
    assert f"{edited}: edited since `make course` wrote it" in err and "--force" in err
    assert "My example chapter" in edited.read_text()
    assert course.main([str(book), str(c), "--no-generate", "--force"]) == 0
    err = capsys.readouterr().err
    backups = list((c / "backup").glob("*/source/01_demo/01_demo.ipynb"))
    assert len(backups) == 1 and "My example chapter" in backups[0].read_text()
    assert f"your version is kept as {backups[0]}" in err
    assert "My example chapter" not in edited.read_text()


def test_a_foreign_config_or_a_course_inside_the_book_is_refused(tmp_path):
    book = _example_book(tmp_path)
    with pytest.raises(NotebookError, match="source folder"):
        write_course(book, book / "course", generate=False)
    (tmp_path / "course").mkdir()
    (tmp_path / "course" / "nbgrader_config.py").write_text("c = get_config()\n")
    with pytest.raises(NotebookError, match="was not written by coursekit.course"):
        write_course(book, tmp_path / "course", generate=False)
    assert (tmp_path / "course" / "nbgrader_config.py").read_text() == "c = get_config()\n"


def test_a_chapter_missing_from_the_toc_is_an_error(tmp_path, capsys):
    book = _example_book(tmp_path)
    (book / "_toc.yml").write_text("format: jb-book\nroot: 01_demo\nchapters:\n- file: 02_gone\n")
    assert course.main([str(book), str(tmp_path / "course"), "--no-generate"]) == 2
    assert "02_gone" in capsys.readouterr().err
    assert not (tmp_path / "course" / "source").exists()


def test_autograde_without_course_or_submissions_says_what_to_do(tmp_path, capsys):
    book = _example_book(tmp_path)
    assert course.main([str(book), str(tmp_path / "course"), "--no-generate"]) == 0
    assert course.main(["autograde", str(tmp_path / "nowhere")]) == 2
    assert "run `make course` first" in capsys.readouterr().err
    assert course.main(["autograde", str(tmp_path / "course")]) == 2
    assert "no submissions in" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        course.main(["autograde", str(tmp_path / "course"), "--jobs", "0"])
    for student in ("bob", "ada"):
        submit(tmp_path / "course", student, "01_demo", "{}")
    assert course.main(["autograde", str(tmp_path / "course"), "--student", "adaa"]) == 2
    assert "no submission of student 'adaa' in " in (err := capsys.readouterr().err)
    assert err.rstrip().endswith("; students: ada, bob")  # a typo lists the ids, as `grade` does


def test_release_is_the_student_version(demo):
    ours, _ = student_version(demo["source"])
    release = demo["release"]
    assert [c.source for c in release.cells] == [c.source for c in ours.cells]


# ----------------------------------------------------------------------------- metadata checks
def _cell_index(nb, grade_id: str) -> int:
    return next(i for i, c in enumerate(nb.cells) if _meta(c).get("grade_id") == grade_id)


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
                        "check()\n### BEGIN HIDDEN TESTS\nassert 1\n### END HIDDEN TESTS"),
     "hidden tests in a notebook reach students"),
])
def test_bad_grading_metadata_is_named(change, message):
    nb = example_chapter()
    change(nb)
    with pytest.raises(NotebookError, match=r"ch\.ipynb, cell \d+.*" + re.escape(message)):
        check_grading_metadata(nb, "ch.ipynb")


def test_hand_graded_answers_without_rubric_are_listed():
    nb = example_chapter()
    _cell(nb, "ex-demo-1-answer").metadata.pop("funml", None)
    assert check_grading_metadata(nb).missing_rubrics == ("ex-demo-1-answer",)
    _cell(nb, "ex-demo-1-answer").metadata["funml"] = {"rubric": RUBRIC}
    assert check_grading_metadata(nb).missing_rubrics == ()


def test_nbgrader_runs_from_this_environment():
    env = course._env()
    assert env["PATH"].split(os.pathsep)[0] == os.path.dirname(sys.executable)
    assert (Path(os.path.dirname(sys.executable)) / "alembic").exists()


# ----------------------------------------------------------------------------- the real chapters
def test_chapters_2_and_4_with_two_workers(tmp_path):
    if RUNS == "fixture":
        pytest.skip("FUNML_COURSE_RUNS=fixture")
    stems = sorted(WRONG)
    c = tmp_path / "course"
    points = write_course(ROOT / "book", c, chapters=stems)
    for stem in stems:
        source = nbformat.read(c / "source" / stem / f"{stem}.ipynb", as_version=4)
        release = nbformat.read(c / "release" / stem / f"{stem}.ipynb", as_version=4)
        full = full_solution(source, release)
        wrong = full
        for name, definition in WRONG[stem].items():
            wrong = replace_function(wrong, name, definition)
        submit(c, "full", stem, full)
        submit(c, "wrong", stem, wrong)
    report = autograde(c, jobs=2, display=False, verbose=False)
    print("\n" + report.summary())
    scores = {(r.assignment, r.student): r for r in read_scores(c)}
    for stem in stems:
        full, wrong = scores[(stem, "full")], scores[(stem, "wrong")]
        assert (full.auto, full.auto_max, full.manual_max) == (points[stem].auto, points[stem].auto, points[stem].manual)
        assert wrong.auto < full.auto, (stem, wrong)
    assert report.graded == 4 and report.workers == 2


def test_points_table_matches_the_chapters():
    """book/instructors.md's points table is what the chapters' metadata says (it cannot go stale)."""
    text = (ROOT / "book" / "instructors.md").read_text(encoding="utf-8")
    table = text.split("<!-- points-table")[1].split("<!-- end points-table -->")[0]
    rows = {m[0]: (float(m[1]), float(m[2]), int(m[3]))
            for m in re.findall(r"^\| `([^`]+)` \| ([\d.]+) \| ([\d.]+) \| (\d+) % \|$", table, re.M)}
    expected = {}
    for path in course.grading_chapters(ROOT / "book"):
        p = check_grading_metadata(nbformat.read(path, as_version=4), str(path))
        expected[path.stem] = (p.auto, p.manual, round(100 * p.auto / (p.auto + p.manual)))
    assert rows == expected
    auto, manual = sum(v[0] for v in expected.values()), sum(v[1] for v in expected.values())
    assert f"| the book | {auto:g} | {manual:g} | {round(100 * auto / (auto + manual))} % |" in table


def test_the_documented_grade_command_names_a_hand_graded_cell():
    """book/instructors.md's `grade` example works on the real chapter: the grade id is a hand-graded
    answer of that chapter and the points fit (it named an autograded answer cell once)."""
    text = (ROOT / "book" / "instructors.md").read_text(encoding="utf-8")
    examples = re.findall(r"coursekit\.course grade course \\\n\s+(\S+) (\S+) (\S+) (\d+)\n", text)
    assert examples, "no `grade` example found in book/instructors.md"
    for chapter, _student, grade_id, points in examples:
        nb = nbformat.read(ROOT / "book" / f"{chapter}.ipynb", as_version=4)
        meta = _meta(_cell(nb, grade_id))
        assert meta.get("grade") and meta.get("solution"), (grade_id, meta)  # graded by hand
        assert 0 <= int(points) <= meta["points"], (grade_id, points, meta["points"])


@pytest.mark.parametrize("name, student, chapter", [
    ("alice_02_sparse_autoencoders.ipynb", "alice", "02_sparse_autoencoders"),
    ("alice_02_sparse_autoencoders (1).ipynb", "alice", "02_sparse_autoencoders"),  # a 2nd download
    ("Dan Brown_4712_assignsubmission_file_02_sparse_autoencoders (2).ipynb", "4712",
     "02_sparse_autoencoders"),
    ("alice_02_sparse_autoencoders.py", None, None),
    ("02_sparse_autoencoders.ipynb", None, None),
])
def test_zip_collect_pattern_reads_student_and_chapter(name, student, chapter):
    m = re.match(course.ZIP_REGEXP, f"/x/downloaded/02/extracted/{name}")
    assert (m["student_id"], m["file_id"]) == (student, chapter) if student else m is None


def test_help_names_every_command(capsys):
    with pytest.raises(SystemExit) as exit_:
        course.main(["--help"])
    out = capsys.readouterr().out
    assert exit_.value.code == 0
    assert "commands: build (the default), autograde, scores, grade" in out
