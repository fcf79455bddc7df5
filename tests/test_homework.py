"""Student versions: no solution survives, exercises stay, and a student notebook stops at the first stub."""
from __future__ import annotations

import os
import re
from pathlib import Path

import nbformat
import pytest
import yaml
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from coursekit.colab import SETUP_CELL
from coursekit.homework import (CODE_STUB, HomeworkError, chapter_paths, main, strip_solution_directives,
                                student_version)

ROOT = Path(__file__).resolve().parents[1]
SECRET = "SECRET"  # every piece of solution material in the fixture contains this word


def code(source: str, tags: list[str] | None = None, output: str | None = None):
    cell = new_code_cell(source)
    if tags:
        cell.metadata["tags"] = tags
    if output:
        cell.outputs = [new_output("stream", name="stdout", text=output)]
        cell.execution_count = 3
    return cell


def md(source: str, tags: list[str] | None = None):
    cell = new_markdown_cell(source)
    if tags:
        cell.metadata["tags"] = tags
    return cell


def fixture_notebook() -> nbformat.NotebookNode:
    """A small chapter with every solution form the book uses, before and after the first exercise."""
    nb = new_notebook(cells=[
        code(SETUP_CELL, tags=["setup"]),
        md("# A chapter\nLearning goals."),
        code("scale = 2.0\nseed = 0", tags=["parameters"]),
        code("before = scale * 21\nprint('before', before)", output="before 42.0\n"),
        md("```{exercise}\n:label: ex-one\nWrite `double(v)`.\n```"),
        md("```{solution-start} ex-one\n:class: dropdown\n```"),
        code("def double(v):\n    ### BEGIN SOLUTION\n    return 2 * v  # SECRET\n    ### END SOLUTION\n\n"
             "print('checked', double(before))", output="checked 84.0\n"),
        md("Why this works: SECRET reasoning between the gates."),
        md("```{solution-end}\n```"),
        code("print('after the first exercise')"),
        md("```{exercise}\n:label: ex-two\nExplain the result.\n```\n\n"
           "````{solution} ex-two\n:class: dropdown\nThe SECRET answer.\n```python\nx = 1\n```\n````"),
        md("Solution text: SECRET.", tags=["solution"]),
        code("answer = 'SECRET whole cell'", tags=["solution"]),
        md(":::{solution-start} ex-two\n:::"),
        code("gated = 'SECRET gated, no markers'"),
        md(":::{solution-end}\n:::\n\nText that belongs to the reader."),
    ])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.metadata["funml"] = {"test_parameters": {"scale": 1.0}}
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    return nb


@pytest.fixture()
def student():
    return student_version(fixture_notebook())


def test_no_solution_material_survives(student):
    nb, stats = student
    text = nbformat.writes(nb)
    assert SECRET not in text
    assert "BEGIN SOLUTION" not in text and "{solution" not in text
    assert stats == {"text_removed": 7, "cells_stubbed": 2, "regions": 1, "answers": 0, "hidden_tests": 0}


def test_exercises_stubs_and_reader_text_stay(student):
    nb, _ = student
    sources = [c.source for c in nb.cells]
    assert sources[0] == SETUP_CELL
    assert "def double(v):\n    # YOUR CODE HERE\n    raise NotImplementedError()\n" in sources[5]
    assert "print('checked', double(before))" in sources[5]
    assert sum(s == CODE_STUB for s in sources) == 2  # the whole-cell solution and the gated cell
    # classic {exercise} blocks become a heading and their body: Markdown in Jupyter, no directive
    assert "### Exercise 1\nWrite `double(v)`." in sources and any(
        s.startswith("### Exercise 2\nExplain the result.") for s in sources)
    assert not any("{exercise" in s or ":label:" in s for s in sources)
    assert sources[-1].strip() == "Text that belongs to the reader."


def test_outputs_and_widget_state_cleared_metadata_kept(student):
    nb, _ = student
    assert all(not c.outputs and c.execution_count is None for c in nb.cells if c.cell_type == "code")
    assert "widgets" not in nb.metadata
    assert nb.metadata["funml"] == {"test_parameters": {"scale": 1.0}}
    assert all("solution" not in c.metadata.get("tags", []) for c in nb.cells)


def test_input_notebook_is_not_modified():
    nb = fixture_notebook()
    before = nbformat.writes(nb)
    student_version(nb)
    assert nbformat.writes(nb) == before


def test_strip_directives_respects_fences():
    text = "keep 1\n````{solution} a\n```python\nx = 1\n```\nmore\n````\nkeep 2\n:::{solution} b\nno end"
    assert strip_solution_directives(text) == ("keep 1\nkeep 2", 2)
    assert strip_solution_directives("```{exercise}\n:label: e\n```") == ("```{exercise}\n:label: e\n```", 0)


def test_unbalanced_markers_and_bad_input_are_errors():
    nb = new_notebook(cells=[code("### BEGIN SOLUTION\nx = 1")])
    with pytest.raises(HomeworkError, match="cell 0: 'BEGIN SOLUTION' on line 1 has no 'END SOLUTION'"):
        student_version(nb)
    with pytest.raises(TypeError, match="nb must be a notebook"):
        student_version({"cells": []})


def test_cli_uses_toc_order_and_skips_non_notebooks(tmp_path, capsys):
    book = tmp_path / "book"
    book.mkdir()
    for name in ("b_second", "a_first", "not_in_toc"):
        nbformat.write(fixture_notebook(), book / f"{name}.ipynb")
    (book / "intro.md").write_text("# Intro")
    toc = {"format": "jb-book", "root": "book/intro",
           "chapters": [{"file": "book/b_second"}, {"file": "book/a_first"}]}
    (tmp_path / "_toc.yml").write_text(yaml.safe_dump(toc))
    assert [p.stem for p in chapter_paths(book)] == ["b_second", "a_first"]
    assert main([str(book), str(tmp_path / "homework")]) == 0
    assert sorted(p.name for p in (tmp_path / "homework").iterdir()) == ["a_first.ipynb", "b_second.ipynb"]
    assert "1 solution regions, 0 answer cells and 2 solution cells stubbed" in capsys.readouterr().out
    (tmp_path / "_toc.yml").unlink()
    assert [p.stem for p in chapter_paths(book)] == ["a_first", "b_second", "not_in_toc"]
    with pytest.raises(ValueError, match="src_dir must be an existing folder"):
        chapter_paths(tmp_path / "missing")


def run_until_first_stub(nb: nbformat.NotebookNode, tmp_path: Path) -> tuple[int, nbformat.NotebookNode]:
    """Execute a student notebook with its test parameters; return (index of failing cell, executed nb)."""
    import papermill
    from papermill.exceptions import PapermillExecutionError

    first = next(i for i, c in enumerate(nb.cells) if "raise NotImplementedError()" in c.source)
    nb = nbformat.from_dict(nb)
    nb.cells = nb.cells[: first + 1]  # nothing after the first exercise runs anyway
    src, out = tmp_path / "student.ipynb", tmp_path / "executed.ipynb"
    nbformat.write(nb, src)
    params = nb.metadata.get("funml", {}).get("test_parameters", {})
    with pytest.raises(PapermillExecutionError) as err:
        papermill.execute_notebook(str(src), str(out), parameters=params, kernel_name="python3",
                                   cwd=str(tmp_path), progress_bar=False, log_output=False)
    assert err.value.ename == "NotImplementedError", f"failed before the first exercise: {err.value}"
    executed = nbformat.read(out, as_version=4)
    failing = [i for i, c in enumerate(executed.cells) if c.cell_type == "code"
               and any(o.output_type == "error" for o in c.outputs)]
    return failing[0], executed


def test_student_fixture_stops_at_first_exercise(student, tmp_path):
    nb, _ = student
    failing, executed = run_until_first_stub(nb, tmp_path)
    assert "raise NotImplementedError()" in executed.cells[failing].source
    assert "def double" in executed.cells[failing].source
    printed = [o.text for c in executed.cells[:failing] if c.cell_type == "code" for o in c.outputs
               if o.output_type == "stream"]
    assert printed == ["before 21.0\n"]  # the injected test parameter scale=1.0 was used


# ----------------------------------------------------------------------------- the book's chapters
CHAPTERS = chapter_paths(ROOT / "book")


def solution_lines(nb: nbformat.NotebookNode) -> set[str]:
    """Lines that occur only between BEGIN/END SOLUTION markers of the chapter (the code to write)."""
    inside_lines, outside_lines, inside = set(), set(), False
    for cell in nb.cells:
        for line in cell.source.splitlines():
            if "BEGIN SOLUTION" in line:
                inside = True
            elif "END SOLUTION" in line:
                inside = False
            else:
                (inside_lines if inside else outside_lines).add(line.strip())
    return {line for line in inside_lines - outside_lines if len(line) > 3}


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_student_version_has_no_solution(path):
    original = nbformat.read(path, as_version=4)
    nb, stats = student_version(original)
    text = "\n".join(c.source for c in nb.cells)
    code_lines = {line.strip() for c in nb.cells if c.cell_type == "code" for line in c.source.splitlines()}
    leaked = sorted(line for line in solution_lines(original) if line in code_lines)
    assert not leaked, f"{path.name}: solution lines survive in the student version: {leaked[:3]}"
    has_exercise = any("{exercise" in c.source for c in original.cells if c.cell_type == "markdown")
    if stats["regions"] or stats["cells_stubbed"]:
        assert "raise NotImplementedError()" in text
    elif has_exercise:
        assert "{solution" not in text


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_student_code_before_first_exercise_is_unchanged(path):
    # Code cells are stubbed, never deleted (only the hidden claims cells go), and everything before
    # the first stub is the chapter's own code: tests/test_notebooks.py runs that code, so nothing
    # fails before the first exercise.
    original = [c.source for c in nbformat.read(path, as_version=4).cells if c.cell_type == "code"
                and "claims" not in c.metadata.get("tags", [])]
    student = [c.source for c in student_version(nbformat.read(path, as_version=4))[0].cells
               if c.cell_type == "code"]
    assert len(student) == len(original)
    first = next((i for i, s in enumerate(student) if "raise NotImplementedError()" in s), len(student))
    assert student[:first] == original[:first]


WITH_STUBS = [p for p in CHAPTERS if "BEGIN SOLUTION" in p.read_text(encoding="utf-8")]
# Running a chapter up to its first exercise takes 10-25 s on a small CPU, too slow for every `make test`
# (the fixture test and the static test above cover the mechanism). FUNML_STUDENT_RUNS=one runs the
# first chapter with an exercise, FUNML_STUDENT_RUNS=all every chapter.
STUDENT_RUNS = os.environ.get("FUNML_STUDENT_RUNS", "")


@pytest.mark.parametrize("path", WITH_STUBS, ids=lambda p: p.stem)
def test_chapter_student_version_stops_at_first_exercise(path, tmp_path):
    if STUDENT_RUNS not in ("one", "all") or (STUDENT_RUNS == "one" and path != WITH_STUBS[0]):
        pytest.skip("runs with FUNML_STUDENT_RUNS=one (first chapter with an exercise) or =all")
    nb, _ = student_version(nbformat.read(path, as_version=4))
    failing, executed = run_until_first_stub(nb, tmp_path)
    assert "raise NotImplementedError()" in executed.cells[failing].source


def test_preprocessor_runs_when_registered_with_nbconvert_or_nbgrader():
    from nbconvert.exporters import NotebookExporter

    from coursekit.homework import RemoveSolutionText, nbgrader_preprocessors

    exporter = NotebookExporter()
    exporter.register_preprocessor(RemoveSolutionText)  # registered as nbgrader does: enabled by default
    body, _ = exporter.from_notebook_node(fixture_notebook())
    assert "SECRET reasoning" not in body and "Solution text" not in body
    pres = nbgrader_preprocessors()
    assert pres[0] is RemoveSolutionText and "ClearSolutions" in [p.__name__ for p in pres]


# ------------------------------------------------------------------ the spec layout (nbgrader metadata)
from coursekit.example_chapter import KL_TESTS, PROSE_ANSWER, example_chapter  # noqa: E402
from coursekit.homework import TEXT_STUB, check_markers  # noqa: E402


def test_spec_layout_student_version():
    nb, stats = student_version(example_chapter(), name="example.ipynb")
    sources = [c.source for c in nb.cells]
    by_id = {c.metadata["nbgrader"]["grade_id"]: c for c in nb.cells if "nbgrader" in c.metadata}
    assert by_id["ex-demo-1-answer"].source == TEXT_STUB  # prose answer -> YOUR ANSWER HERE
    assert "# YOUR CODE HERE\n    raise NotImplementedError()" in by_id["ex-demo-2-answer"].source
    assert by_id["ex-demo-2-answer"].source.startswith("def kl_divergence(rho, rho_hat):")
    tests = by_id["ex-demo-2-tests"].source  # the visible self-check is kept, never a stub
    assert tests == KL_TESTS
    assert "check_kl_sparsity(kl_divergence)" in tests and "check_own_work" not in tests
    text = "\n".join(sources)
    assert PROSE_ANSWER not in text and "clamp" not in text and "Clamping" not in text
    assert "{solution" not in text and "{exercise" not in text and "HIDDEN" not in text
    assert [sources.count(f"### Exercise {k}") for k in (1, 2, 3)] == [1, 1, 1]
    assert any(s.startswith("A unit is on") for s in sources)  # statements stay, as Markdown
    number = by_id["ex-demo-3-answer"].source  # a number answer: the assignment goes with its region
    assert "kl_value =" not in number and "raise NotImplementedError()" in number
    assert stats == {"text_removed": 7, "cells_stubbed": 0, "regions": 2, "answers": 3, "hidden_tests": 0}


def test_graded_cells_are_never_stubbed_even_inside_the_gates():
    nb = example_chapter()
    ids = [c.metadata.get("nbgrader", {}).get("grade_id") for c in nb.cells]
    tests = nb.cells.pop(ids.index("ex-demo-2-tests"))
    tests.metadata["tags"] = ["hide-input", "solution"]  # misplaced and mis-tagged: still kept
    nb.cells.insert(ids.index("ex-demo-2-answer") + 1, tests)
    student, _ = student_version(nb)
    kept = [c for c in student.cells if c.get("metadata", {}).get("nbgrader", {}).get("grade_id") == "ex-demo-2-tests"]
    assert len(kept) == 1 and "check_kl_sparsity(kl_divergence)" in kept[0].source
    assert kept[0].metadata["tags"] == ["hide-input"]


def rendered_pre_text(nb) -> str:
    """Text of every <pre>/<code> block of the notebook rendered by plain nbconvert HTML."""
    import html
    import re

    from nbconvert import HTMLExporter

    body, _ = HTMLExporter(template_name="classic").from_notebook_node(nb)
    blocks = re.findall(r"<(pre|code)[^>]*>(.*?)</\1>", body, flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", "\n".join(b for _, b in blocks)))


def statement_phrases(nb) -> list[str]:
    """A few plain words from each exercise statement cell (between the gated exercise markers)."""
    import re

    phrases, inside = [], False
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        if "{exercise-start}" in cell.source:
            inside = True
        elif "{exercise-end}" in cell.source:
            inside = False
        elif inside:
            for line in cell.source.splitlines():
                words = re.sub(r"\$[^$]*\$|`[^`]*`|[*_#>()]", " ", line).split()
                if len(words) >= 4:
                    phrases.append(" ".join(words[:4]))
                    break
    return phrases


def test_exercise_statements_render_as_markdown_in_plain_nbconvert():
    source = example_chapter()
    phrases = statement_phrases(source)
    assert len(phrases) == 3
    for nb in (source, student_version(source)[0]):
        pre = " ".join(rendered_pre_text(nb).split())
        assert not [p for p in phrases if p in pre], "an exercise statement sits inside a code block"
    assert "{exercise" not in rendered_pre_text(student_version(source)[0])


GRADED = [p for p in CHAPTERS if '"nbgrader"' in p.read_text(encoding="utf-8")]


@pytest.mark.parametrize("path", GRADED, ids=lambda p: p.stem)
def test_graded_chapter_statements_render_as_markdown_and_answers_go(path):
    source = nbformat.read(path, as_version=4)
    student, _ = student_version(source, name=str(path))
    for version, nb in (("chapter", source), ("student version", student)):
        pre = " ".join(rendered_pre_text(nb).split())
        leaked = [p for p in statement_phrases(source) if p in pre]
        assert not leaked, f"{path.name} ({version}): exercise statements inside code blocks: {leaked[:2]}"
    text = "\n".join(c.source for c in student.cells)
    for cell in source.cells:
        meta = cell.metadata.get("nbgrader", {})
        if cell.cell_type == "markdown" and meta.get("solution"):
            assert cell.source.strip()[:60] not in text, f"{path.name}: model answer {meta['grade_id']} leaked"


# ----------------------------------------------------------------------------- errors name the place
@pytest.mark.parametrize("source, message", [
    ("x = 1\n### END SOLUTION", "cell 0: 'END SOLUTION' on line 2 without a 'BEGIN SOLUTION'"),
    ("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION", "cell 0: 'BEGIN SOLUTION' on line 2 inside"),
    ("### BEGIN HIDDEN TESTS\nassert 1", "cell 0: 'BEGIN HIDDEN TESTS' on line 1 has no 'END HIDDEN TESTS'"),
    ("assert 1\n### END HIDDEN TESTS", "cell 0: 'END HIDDEN TESTS' on line 2 without"),
])
def test_unbalanced_markers_name_notebook_and_cell(source, message):
    nb = new_notebook(cells=[code(source)])
    with pytest.raises(HomeworkError, match=re.escape(f"ch.ipynb, {message}")):
        student_version(nb, name="ch.ipynb")


def test_end_without_begin_never_leaks():
    # a typo in BEGIN: nbgrader alone would keep the solution code in the student version
    nb = new_notebook(cells=[code("def f():\n    ### BEGIN SOLTUION\n    return 42  # SECRET\n    ### END SOLUTION")])
    with pytest.raises(HomeworkError, match="without a 'BEGIN SOLUTION'"):
        student_version(nb, name="ch.ipynb")


@pytest.mark.parametrize("cells, message", [
    ([md("```{solution-start} a\n```"), md("x")], "cell 0: {solution-start} has no {solution-end}"),
    ([md("x"), md("```{solution-end}\n```")], "cell 1: {solution-end} without a {solution-start}"),
    ([md("```{exercise-start}\n:label: a\n```"), md("```{exercise-start}\n:label: b\n```")],
     "cell 1: {exercise-start} before the {exercise-start} of cell 0 is closed"),
])
def test_unpaired_gates_name_notebook_and_cell(cells, message):
    with pytest.raises(HomeworkError, match=re.escape(f"ch.ipynb, {message}")):
        student_version(new_notebook(cells=cells), name="ch.ipynb")


def test_graded_notebook_needs_solution_metadata_on_every_region():
    nb = example_chapter()
    nb.cells.append(code("def g():\n    ### BEGIN SOLUTION\n    return 1\n    ### END SOLUTION"))
    with pytest.raises(HomeworkError, match=rf"cell {len(nb.cells) - 1}: a BEGIN/END SOLUTION region in a cell "
                                            "without nbgrader metadata"):
        student_version(nb, name="ch.ipynb")


# ------------------------------------------------------------------------- the command never destroys
def make_book(tmp_path: Path) -> Path:
    book = tmp_path / "book"
    book.mkdir()
    nbformat.write(fixture_notebook(), book / "ch1.ipynb")
    nbformat.write(example_chapter(), book / "ch2.ipynb")
    return book


def snapshot(folder: Path) -> dict:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("spelling", ["same", "dot", "dot-slash", "trailing-slash", "symlink", "inside",
                                      "inside-via-symlink", "parent"])
def test_output_that_is_inside_or_contains_the_source_is_refused(tmp_path, monkeypatch, capsys, spelling):
    book = make_book(tmp_path)
    (tmp_path / "link").symlink_to(book)
    monkeypatch.chdir(tmp_path)
    out = {"same": "book", "dot": "book/.", "dot-slash": "./book", "trailing-slash": "book/",
           "symlink": "link", "inside": "book/homework", "inside-via-symlink": "link/sub/homework",
           "parent": "."}[spelling]
    before = snapshot(book)
    assert main(["book", out]) == 2
    err = capsys.readouterr().err
    assert "source folder" in err and "error:" in err
    assert snapshot(book) == before  # nothing written, nothing lost


def test_output_path_that_is_a_file_is_refused(tmp_path, capsys):
    book = make_book(tmp_path)
    (tmp_path / "homework").write_text("my notes")
    assert main([str(book), str(tmp_path / "homework")]) == 2
    assert "is a file, not a folder" in capsys.readouterr().err
    assert (tmp_path / "homework").read_text() == "my notes"


def test_never_writes_through_a_symlink(tmp_path, capsys):
    book = make_book(tmp_path)
    out = tmp_path / "homework"
    out.mkdir()
    precious = tmp_path / "precious.ipynb"
    precious.write_text("not mine")
    (out / "ch1.ipynb").symlink_to(precious)
    assert main([str(book), str(out)]) == 2
    err = capsys.readouterr().err
    assert "ch1.ipynb is a symbolic link" in err
    assert precious.read_text() == "not mine" and (out / "ch1.ipynb").is_symlink()


def test_symlinked_subfolder_leading_into_the_source_is_refused(tmp_path):
    from coursekit.safe_io import make_dirs

    book = make_book(tmp_path)
    out = tmp_path / "homework"
    out.mkdir()
    (out / "sub").symlink_to(book)
    with pytest.raises(HomeworkError, match="leads into the source folder"):
        make_dirs(out / "sub", book)


def test_rewrite_replaces_own_output_atomically_and_failures_keep_the_old_file(tmp_path, monkeypatch):
    book = make_book(tmp_path)
    out = tmp_path / "homework"
    assert main([str(book), str(out)]) == 0
    first = snapshot(out)
    assert set(first) == {"ch1.ipynb", "ch2.ipynb"}
    assert main([str(book), str(out)]) == 0 and snapshot(out) == first  # rerun: same files

    def broken_fsync(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "fsync", broken_fsync)
    (book / "ch1.ipynb").write_text((book / "ch1.ipynb").read_text().replace("A chapter", "Changed"))
    assert main([str(book), str(out)]) == 2
    assert snapshot(out) == first  # the previous version is intact
    assert sorted(p.name for p in out.iterdir()) == ["ch1.ipynb", "ch2.ipynb"]  # no temporary files left


def test_written_files_are_readable_by_others(tmp_path):
    book = make_book(tmp_path)
    main([str(book), str(tmp_path / "homework")])
    mode = (tmp_path / "homework" / "ch1.ipynb").stat().st_mode & 0o777
    assert mode == 0o666 & ~_current_umask()


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("content, message", [
    ("", "the file is empty, not a notebook"),
    ("   \n", "the file is empty, not a notebook"),
    ('{"cells": [', "not a notebook, malformed JSON at line 1"),
    ("[1, 2]", "not a notebook (JSON without cells)"),
    ('{"nbformat": 3, "nbformat_minor": 0, "metadata": {}, "worksheets": []}', "nbformat 3 notebook"),
    ('{"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [{"cell_type": "code"}]}',
     "not a valid version-4 notebook"),
])
def test_bad_notebook_files_are_named_and_nothing_is_written(tmp_path, capsys, content, message):
    book = make_book(tmp_path)
    (book / "ch3.ipynb").write_text(content)
    out = tmp_path / "homework"
    assert main([str(book), str(out)]) == 2
    err = capsys.readouterr().err
    assert f"{book / 'ch3.ipynb'}: {message}" in err
    assert not out.exists()  # every chapter is converted before anything is written


def test_marker_error_in_cli_names_the_file_and_cell(tmp_path, capsys):
    book = make_book(tmp_path)
    nbformat.write(new_notebook(cells=[md("intro"), code("x = 1\n### END SOLUTION")]), book / "ch3.ipynb")
    assert main([str(book), str(tmp_path / "homework")]) == 2
    assert f"{book / 'ch3.ipynb'}, cell 1: 'END SOLUTION' on line 2" in capsys.readouterr().err


def test_a_folder_where_a_notebook_goes_is_refused(tmp_path, capsys):
    book = make_book(tmp_path)
    (tmp_path / "homework" / "ch1.ipynb").mkdir(parents=True)
    assert main([str(book), str(tmp_path / "homework")]) == 2
    assert "ch1.ipynb exists and is not a regular file" in capsys.readouterr().err


def test_hard_link_to_a_chapter_is_replaced_not_written_through(tmp_path):
    book = make_book(tmp_path)
    out = tmp_path / "homework"
    out.mkdir()
    os.link(book / "ch1.ipynb", out / "ch1.ipynb")  # same file under two names
    before = snapshot(book)
    assert main([str(book), str(out)]) == 0
    assert snapshot(book) == before  # the chapter keeps its solutions
    assert "SECRET" not in (out / "ch1.ipynb").read_text()


def test_rubric_metadata_is_stripped_other_cell_metadata_kept():
    answer = md("My answer.")
    answer.metadata["nbgrader"] = {"schema_version": 3, "grade_id": "ex-1-answer", "solution": True,
                                   "grade": True, "locked": False, "points": 2}
    answer.metadata["funml"] = {"rubric": "2 points: names the bias", "note": "kept"}
    only = code("x = 1")
    only.metadata["funml"] = {"rubric": "1 point"}
    nb, _ = student_version(new_notebook(cells=[answer, only]))
    assert nb.cells[0].metadata["funml"] == {"note": "kept"} and nb.cells[0].source == TEXT_STUB
    assert "funml" not in nb.cells[1].metadata and nb.cells[1].source == "x = 1"


def test_a_chapter_the_toc_lists_but_that_is_missing_is_an_error(tmp_path, capsys):
    from coursekit.toc import TocError, chapter_notebooks

    book = tmp_path / "book"
    book.mkdir()
    nbformat.write(fixture_notebook(), book / "a_first.ipynb")
    (book / "intro.md").write_text("# Intro")
    toc = {"format": "jb-book", "root": "book/intro",
           "chapters": [{"file": "book/a_first"}, {"file": "book/b_gone.ipynb"}]}
    (tmp_path / "_toc.yml").write_text(yaml.safe_dump(toc))
    expected = (f"{tmp_path / '_toc.yml'} lists 1 page(s) with no source file: "
                f"{tmp_path / 'book' / 'b_gone'}{{.ipynb,.md,.rst}}; restore the file or remove its entry")
    for read in (lambda: chapter_paths(book), lambda: chapter_notebooks(tmp_path)):
        with pytest.raises(TocError) as err:
            read()
        assert str(err.value).startswith(expected)
    assert main([str(book), str(tmp_path / "homework")]) == 2
    assert expected in capsys.readouterr().err and not (tmp_path / "homework").exists()
    (tmp_path / "_toc.yml").write_text("chapters: [\n")
    with pytest.raises(TocError, match="_toc.yml is not valid YAML"):
        chapter_paths(book)


def test_claims_cells_never_reach_students():
    """A claims cell spells out results the exercises ask students to predict: it is dropped."""
    claims = code("relu_only = 0.5 / math.sqrt(2 * math.pi)\nclaim(True, 'the answer')",
                  tags=["claims", "remove-cell"])
    kept = code("x = 1")
    nb, _ = student_version(new_notebook(cells=[kept, claims]))
    assert [c.source for c in nb.cells] == ["x = 1"]


@pytest.mark.parametrize("path", chapter_paths(ROOT / "book"), ids=lambda p: p.stem)
def test_no_chapter_ships_its_claims(path):
    nb, _ = student_version(nbformat.read(path, as_version=4), str(path))
    assert not [c for c in nb.cells if "claims" in c.metadata.get("tags", [])]
    assert "claim(" not in "\n".join(c.source for c in nb.cells if c.cell_type == "code")
