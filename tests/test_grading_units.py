"""The grader's parts that never run student code: number answers and the submission reader."""
from __future__ import annotations

import json
import math

import nbformat
import pytest

from coursekit.example_chapter import NUMBERS, example_chapter
from coursekit.grading.numbers import chapter_module, chapter_numbers, grade_numbers, read_numbers
from coursekit.grading.submission import MISSING, read_submission


# ------------------------------------------------------------------------------------ number answers
def test_numbers_are_read_without_running_anything():
    values, problems = read_numbers(
        "import math\nfrom math import sqrt\n%time\n"
        "a = 0.5 * math.log(4 / 3)\nb = -2 ** 3 // 3\nc = a * 2 + sqrt(16) + math.pi\n"
        "d: float = 1e-3\nprint(a)\n")
    assert values == {"a": 0.5 * math.log(4 / 3), "b": -3.0, "c": math.log(4 / 3) + 4 + math.pi, "d": 1e-3}
    assert problems == {}


@pytest.mark.parametrize("expr, why", [
    ("__import__('os').system('true')", "only math functions may be called"),
    ("open('/etc/passwd')", "only math functions may be called"),
    ("True", "True is not a number"),
    ("'0.5'", "'0.5' is not a number"),
    ("10 ** 10 ** 10", "an exponent larger than 1024"),
    ("1 / 0", "a division by zero"),
    ("math.log(-1)", "log(-1,) is not defined (math domain error)"),
    ("math.inf", "math.inf is not one of the allowed constants (pi, e, tau)"),
    ("x_unknown", "the name 'x_unknown' is not a number assigned above in this cell"),
    ("[1][0]", "Subscript expressions are not allowed"),
    ("(-8) ** 0.5", "a complex number"),
])
def test_anything_but_arithmetic_is_unreadable(expr, why):
    values, problems = read_numbers(f"v = {expr}\n")
    assert "v" not in values and problems["v"].startswith(why)


def test_grading_splits_points_between_names():
    expected = {"a": (1.0, 0.01), "b": (2.0, 0.0), "c": (3.0, 0.1)}
    points, message = grade_numbers("a = 1.005\nb = 2.5\nc = 'x'\n", expected, 3)
    assert points == 1.0
    assert message == ("a = 1.005: correct; b = 2.5: not within 0 of the expected value; "
                       "c: 'x' is not a number")
    assert grade_numbers(None, expected, 3) == (0.0, "the answer cell is missing")
    assert grade_numbers("a = (", expected, 3)[1].startswith("a: the answer cell is not valid Python")


def test_chapter_tables():
    assert chapter_module("book/02_sparse_autoencoders.ipynb") == "coursekit.grading.answers.ch02"
    assert chapter_module("intro.ipynb") == ""
    table = chapter_numbers("77_no_such_chapter.ipynb")  # no module: only the example's table
    assert table == NUMBERS
    ref, tol = NUMBERS["ex-demo-3-tests"]["kl_value"]
    assert ref == pytest.approx(0.05 * math.log(0.25) + 0.95 * math.log(0.95 / 0.8)) and tol == 1e-3


# -------------------------------------------------------------------------------- submission reader
def _ids(nb):
    return [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]


def _write(path, nb):
    nbformat.write(nb, path)
    return path


def test_tampered_cells_are_restored_and_reported(tmp_path):
    source = example_chapter()
    nb = example_chapter()
    ids = _ids(nb)
    nb.cells[ids.index("ex-demo-2-answer")].source = "def kl_divergence(rho, rho_hat):\n    return 0"
    tests = nb.cells[ids.index("ex-demo-2-tests")]
    tests.source = "pass  # checks removed"
    tests.metadata.nbgrader["points"] = 30
    del nb.cells[ids.index("ex-demo-3-answer")]
    sub = read_submission(source, _write(tmp_path / "s.ipynb", nb))
    assert sub.ok and sub.answers["ex-demo-2-answer"] == "def kl_divergence(rho, rho_hat):\n    return 0"
    assert "ex-demo-3-answer" not in sub.answers
    assert sub.notes == [
        "cell ex-demo-2-tests: nbgrader metadata changed (points 3 -> 30); the source's is used",
        "locked cell ex-demo-2-tests was edited; restored from the source",
        "answer cell ex-demo-3-answer is missing: its exercise gets 0"]
    restored = {g: c for g, c in zip(_ids(sub.nb), sub.nb.cells)}
    assert restored["ex-demo-2-tests"].source == source.cells[_ids(source).index("ex-demo-2-tests")].source
    assert restored["ex-demo-3-answer"].source == MISSING  # never the source's solution
    assert sub.nb.metadata == source.metadata and len(sub.nb.cells) == len(source.cells)


@pytest.mark.parametrize("content, reason", [
    (b"", "the file is empty"),
    (b"\xff\xfe{", "not a notebook (not UTF-8 text at byte 0)"),
    (b'{"cells": [', "not a notebook: truncated JSON at line 1, column 12 (Expecting value)"),
    (b'{"cells": ]}', "not a notebook: invalid JSON at line 1, column 11 (Expecting value)"),
    (b'[1, 2]', "not a notebook: JSON without cells"),
])
def test_unreadable_files_give_a_reason_not_an_exception(tmp_path, content, reason):
    path = tmp_path / "s.ipynb"
    path.write_bytes(content)
    sub = read_submission(example_chapter(), path)
    assert not sub.ok and sub.reason == reason and sub.nb is None


def test_other_versions_are_read_with_a_note(tmp_path):
    data = json.loads(nbformat.writes(example_chapter()))
    data["nbformat"], data["nbformat_minor"] = 3, 0
    for cell in data["cells"]:
        if "nbgrader" in cell["metadata"]:
            cell["metadata"]["nbgrader"]["schema_version"] = 1
    path = tmp_path / "s.ipynb"
    path.write_text(json.dumps(data))
    sub = read_submission(example_chapter(), path)
    assert sub.ok and "ex-demo-2-answer" in sub.answers
    assert sub.notes[:2] == ["nbformat 3 (expected 4); its cells were read anyway",
                             "nbgrader schema_version ['1'] in the submission; the source's metadata is used"]
