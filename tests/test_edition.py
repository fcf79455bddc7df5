"""The term edition (issue 22): a fixture chapter with planted markers in its solution, its hidden
tests and its rubric; the term page, the leak scan of a crafted site and the published branch must
keep every marker out, and the scan must fail wherever a marker is planted in a site file."""
from __future__ import annotations

import json
import subprocess

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook, new_output

from coursekit import edition, site_leaks

SOLUTION_LINE = "zebra_quotient = 7 * math.pi  # planted marker QUOKKA-7731"
EXPLANATION = "The planted explanation says the quokka marker sits in the solution only, always."
HIDDEN_LINE = "assert abs(zebra_quotient - 21.99114857) < 1e-6, 'hidden marker WOMBAT'"
RUBRIC = "Full marks for naming the capybara rule and its two conditions."
ANSWER_TEXT = "The written answer names the pangolin theorem and proves it in two lines."
MARKERS = ("QUOKKA", "quokka", "WOMBAT", "capybara", "pangolin")


def grader(**meta) -> dict:
    return {"nbgrader": {"schema_version": 3, "locked": False, "points": 0, **meta}}


def chapter() -> nbformat.NotebookNode:
    cells = [
        new_markdown_cell("# A fixture chapter\n\nThe public text of the chapter."),
        new_code_cell("print('public output 123')"),
        new_markdown_cell("```{exercise-start}\n:label: ex-a\n```"),
        new_markdown_cell("Compute the zebra quotient $7\\pi$ and store it."),
        new_markdown_cell("```{exercise-end}\n```"),
        new_markdown_cell("```{solution-start} ex-a\n:class: dropdown\n```", metadata={"tags": ["solution"]}),
        new_code_cell(f"import math\n\n### BEGIN SOLUTION\n{SOLUTION_LINE}\n### END SOLUTION",
                      metadata=grader(grade_id="ex-a-answer", solution=True, grade=False)),
        new_markdown_cell(EXPLANATION, metadata={"tags": ["solution"]}),
        new_markdown_cell("```{solution-end}\n```", metadata={"tags": ["solution"]}),
        new_code_cell("print(f'zebra_quotient = {zebra_quotient}')\n### BEGIN HIDDEN TESTS\n"
                      f"{HIDDEN_LINE}\n### END HIDDEN TESTS",
                      metadata={**grader(grade_id="ex-a-tests", solution=False, grade=True, points=2,
                                         locked=True), "tags": ["hide-input"]}),
        new_markdown_cell("```{exercise-start}\n:label: ex-b\n```"),
        new_markdown_cell("Name the rule in one sentence."),
        new_markdown_cell("```{exercise-end}\n```"),
        new_markdown_cell("```{solution-start} ex-b\n:class: dropdown\n```", metadata={"tags": ["solution"]}),
        new_markdown_cell(ANSWER_TEXT, metadata={**grader(grade_id="ex-b-answer", solution=True, grade=True,
                                                          points=1), "funml": {"rubric": RUBRIC}}),
        new_markdown_cell("```{solution-end}\n```", metadata={"tags": ["solution"]}),
        new_code_cell("print('after the exercises')"),
    ]
    nb = new_notebook(cells=cells, metadata={"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                            "language": "python"}})
    for i, cell in enumerate(nb.cells):
        cell["id"] = f"cell-{i}"
    return nb


def executed(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """The chapter as the full build leaves it: every code cell with the output it printed."""
    nb = nbformat.from_dict(json.loads(json.dumps(nb)))
    printed = {1: "public output 123\n", 6: "", 9: "zebra_quotient = 21.991148575128552\n",
               16: "after the exercises\n"}
    for i, text in printed.items():
        if text:
            nb.cells[i].outputs = [new_output("stream", name="stdout", text=text)]
    return nb


@pytest.fixture()
def book(tmp_path):
    """A book root: _toc.yml, _config.yml, an intro page, an instructors' page, one chapter; a git repo."""
    (tmp_path / "book").mkdir()
    nbformat.write(chapter(), tmp_path / "book" / "ch.ipynb")
    (tmp_path / "book" / "intro.md").write_text("# Intro\n\nThe book in one page.\n", encoding="utf-8")
    (tmp_path / "book" / "instructors.md").write_text("# Instructors\n\nHow grading works.\n", encoding="utf-8")
    (tmp_path / "_toc.yml").write_text(
        "format: jb-book\nroot: book/intro\nparts:\n  - caption: Chapters\n    chapters:\n"
        "      - file: book/ch\n  - caption: Appendix\n    chapters:\n      - file: book/instructors\n",
        encoding="utf-8")
    (tmp_path / "_config.yml").write_text(
        "title: Fixture\nlogo: book/_static/logo.png\nexecute:\n  execute_notebooks: force\n"
        "repository:\n  url: https://github.com/example/book\n  branch: main\n"
        "html:\n  favicon: book/_static/favicon.png\nsphinx:\n  local_extensions:\n    funml_site: book/_ext\n"
        "  config:\n    html_static_path: [book/_static]\n", encoding="utf-8")
    executed_dir = tmp_path / "_build" / "jupyter_execute" / "book"
    executed_dir.mkdir(parents=True)
    nbformat.write(executed(chapter()), executed_dir / "ch.ipynb")
    git = ["git", "-C", str(tmp_path), "-c", "user.name=t", "-c", "user.email=t@example.com"]
    subprocess.run(["git", "init", "-q", "-b", "main", str(tmp_path)], check=True)
    subprocess.run([*git, "add", "-A"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "fixture"], check=True)
    return tmp_path


def assert_no_marker(text: str) -> None:
    found = [m for m in MARKERS if m in text]
    assert not found, f"planted markers {found} leaked"


def test_term_page_keeps_statements_and_public_outputs_and_drops_every_solution():
    term = edition.term_notebook(chapter(), executed(chapter()), "book/ch.ipynb")
    text = site_leaks.notebook_text(term)
    assert_no_marker(text)
    assert "21.99" not in text                     # the tests cell printed the solution's value
    assert "public output 123" in text and "after the exercises" in text
    sources = [c.source for c in term.cells]
    assert "```{exercise-start}\n:label: ex-a\n```" in sources and "```{exercise-end}\n```" in sources
    assert not any("solution-start" in s or "solution-end" in s for s in sources)
    tests = [c for c in term.cells if c.source.startswith("print(f'zebra_quotient")]
    assert len(tests) == 1 and tests[0].outputs == [] and "HIDDEN" not in tests[0].source
    assert len(term.cells) == 10          # 17 cells less 4 gates, 2 answers and the explanation


def test_a_chapter_changed_since_the_full_build_is_refused():
    changed = chapter()
    changed.cells[1].source = "print('edited after the build')"
    with pytest.raises(edition.EditionError, match="older than the chapter; run `make book`"):
        edition.term_notebook(changed, executed(chapter()), "book/ch.ipynb")


def test_term_config_turns_execution_and_source_copies_off_and_points_buttons_at_the_branch():
    import yaml

    config = yaml.safe_load("execute: {execute_notebooks: force}\nlogo: book/_static/logo.png\n"
                            "repository: {url: 'https://github.com/o/r', branch: main}\n"
                            "sphinx: {local_extensions: {funml_site: book/_ext},"
                            " config: {html_static_path: [book/_static]}}")
    cfg = edition.term_config(config, "../..", "spring-term", None)
    assert cfg["execute"]["execute_notebooks"] == "off"
    assert cfg["repository"] == {"url": "https://github.com/o/r", "branch": "spring-term"}
    assert cfg["logo"] == "../../book/_static/logo.png"
    assert cfg["sphinx"]["local_extensions"] == {"funml_site": "../../book/_ext"}
    conf = cfg["sphinx"]["config"]
    assert conf["html_static_path"] == ["../../book/_static"]
    assert conf["html_copy_source"] is False and conf["funml_edition"] == "term"
    assert config["repository"]["branch"] == "main"          # the full edition's config is untouched
    toc = edition.term_toc(yaml.safe_load("root: book/intro\nparts:\n - chapters: [{file: book/ch}]\n"
                                          " - chapters: [{file: book/instructors}]\n"))
    assert toc["parts"] == [{"chapters": [{"file": "book/ch"}]}]


@pytest.mark.parametrize("branch", ["", "../main", "a..b", "term.lock", "-x", "term/"])
def test_a_bad_branch_name_is_refused(branch):
    with pytest.raises(edition.EditionError, match="branch must be a plain git branch name"):
        edition.check_branch(branch)


@pytest.mark.parametrize("url", ["", "github.com/o/r", "https://gitlab.com/o/r", "https://github.com/o",
                                 "https://github.com/o/r/tree/term"])
def test_a_repository_colab_cannot_open_is_refused(url):
    with pytest.raises(edition.EditionError, match="repository must be a GitHub repository URL"):
        edition.check_repository(url)
    assert edition.check_repository("https://github.com/o/r-2026/") == "https://github.com/o/r-2026"
    assert edition.check_repository(None) is None


def test_the_secrets_are_the_solution_parts_only(book):
    secrets = site_leaks.collect_secrets(book, book / "_build" / "jupyter_execute")
    runs = {" ".join(run) for run in secrets.runs}
    assert "zebra quotient 7 math pi planted marker quokka" in runs
    assert "the planted explanation says the quokka marker sits" in runs
    assert any("wombat" in r for r in runs) and any("capybara" in r for r in runs)
    assert any("pangolin" in r for r in runs)
    assert not any("public" in r or "exercise" in r for r in runs)   # public text and gates are not secret
    assert {"explanation", "capybara", "pangolin"} <= set(secrets.words)   # 7 letters or more
    assert "zebra" not in secrets.words                               # the statement names it


CLEAN_PAGE = ('<html><body><h1>A fixture chapter</h1><p>The public text of the chapter.</p>'
              '<div class="cell_input"><pre><span class="nb">print</span>(<span class="s1">'
              "'public output 123'</span>)</pre></div><pre>public output 123</pre></body></html>")
PLANTED = {
    # the solution line as Pygments highlights it on a page
    "book/ch.html": CLEAN_PAGE.replace("</body>", '<pre><span class="n">zebra_quotient</span> <span class="o">'
                                       '=</span> <span class="mi">7</span> <span class="o">*</span> <span '
                                       'class="n">math</span><span class="o">.</span><span class="n">pi</span>'
                                       '  <span class="c1"># planted marker QUOKKA-7731</span></pre></body>'),
    # the explanation inside a script, JSON-escaped
    "_static/state.js": "var state = " + json.dumps({"text": EXPLANATION.replace(" ", "\n")}) + ";",
    # the hidden tests in a copy of the source notebook
    "_sources/book/ch.ipynb": nbformat.writes(chapter()),
    # the written answer in a text file, with HTML entities
    "book/notes.txt": ANSWER_TEXT.replace("the", "&#116;he"),
    # a rubric word, stored by Sphinx's search index as a term
    "searchindex.js": 'Search.setIndex({"terms": {"capybara": [0], "chapter": [0]}, "titles": ["Fixture"]})',
}


@pytest.mark.parametrize("name", sorted(PLANTED))
def test_leak_scan_finds_a_marker_planted_in_any_file_of_a_site(book, tmp_path, name):
    site = tmp_path / "site"
    (site / "book").mkdir(parents=True)
    (site / "index.html").write_text(CLEAN_PAGE, encoding="utf-8")
    (site / "book" / "ch.html").write_text(CLEAN_PAGE, encoding="utf-8")
    (site / "searchindex.js").write_text('Search.setIndex({"terms": {"chapter": [0], "public": [0]}})')
    secrets = site_leaks.collect_secrets(book, book / "_build" / "jupyter_execute")
    assert site_leaks.scan_site(site, secrets) == []             # the clean site passes
    (site / name).parent.mkdir(parents=True, exist_ok=True)
    (site / name).write_text(PLANTED[name], encoding="utf-8")
    problems = site_leaks.scan_site(site, secrets)
    assert problems and all(p.startswith(f"{name}: ") for p in problems), problems


def _git(root, *args) -> str:
    return subprocess.run(["git", "-C", str(root), *args], capture_output=True, text=True, check=True).stdout


def test_publish_commits_student_notebooks_to_a_branch_and_touches_nothing_else(book):
    status, head = _git(book, "status", "--porcelain"), _git(book, "rev-parse", "HEAD")
    commit = edition.publish(book, "term")
    assert _git(book, "status", "--porcelain") == status and _git(book, "rev-parse", "HEAD") == head
    assert _git(book, "rev-parse", "--abbrev-ref", "HEAD").strip() == "main"
    assert _git(book, "ls-tree", "-r", "--name-only", "term").split() == [
        "README.md", "_toc.yml", "book/ch.ipynb", "book/intro.md"]
    student = nbformat.reads(_git(book, "show", "term:book/ch.ipynb"), as_version=4)
    assert_no_marker(site_leaks.notebook_text(student))
    assert "raise NotImplementedError()" in site_leaks.notebook_text(student)
    assert edition.publish(book, "term") == commit            # unchanged chapters: no new commit
    published = edition.published_notebooks(book, "term")
    assert list(published) == ["term:book/ch.ipynb"]
    assert site_leaks.scan_notebooks(published, site_leaks.collect_secrets(book)) == []


def test_publish_refuses_a_student_version_that_lets_a_solution_through(book, monkeypatch):
    # the leak scan decides what is secret from the chapter's markup, not from the student version,
    # so a generator that lets the solution through cannot make it look public
    monkeypatch.setattr(edition, "student_version", lambda nb, name: (nb, {}))
    with pytest.raises(edition.EditionError, match="not published, solution material"):
        edition.publish(book, "term")
    assert _git(book, "branch", "--list", "term") == ""


def test_term_check_fails_on_a_leaky_site_or_branch_and_passes_a_clean_pair(book):
    html = book / "_build" / "term" / "html"
    html.mkdir(parents=True)
    (html / "index.html").write_text(CLEAN_PAGE, encoding="utf-8")
    assert edition.term_problems(book, html, "term") == [
        "no notebooks on branch 'term', which the launch buttons open (run `python -m coursekit.edition publish`)"]
    edition.publish(book, "term")
    assert edition.term_problems(book, html, "term") == []
    (html / "_sources").mkdir()
    assert any("must not copy its sources" in p for p in edition.term_problems(book, html, "term"))
    (html / "_sources").rmdir()

    # a branch holding the full chapter (say, published by hand from main): its hidden tests leak
    blob = subprocess.run(["git", "-C", str(book), "hash-object", "-w", "book/ch.ipynb"],
                          capture_output=True, text=True, check=True).stdout.strip()
    tree = subprocess.run(["git", "-C", str(book), "mktree"], input=f"100644 blob {blob}\tch.ipynb\n",
                          capture_output=True, text=True, check=True).stdout.strip()
    commit = subprocess.run(["git", "-C", str(book), "-c", "user.name=t", "-c", "user.email=t@example.com",
                             "commit-tree", tree, "-m", "full chapter"],
                            capture_output=True, text=True, check=True).stdout.strip()
    _git(book, "update-ref", "refs/heads/wrong", commit)
    problems = edition.term_problems(book, html, "wrong")
    assert problems and all(p.startswith("wrong:ch.ipynb: ") for p in problems), problems


def test_widgets_of_a_dropped_solution_cell_leave_the_saved_state():
    # a public explorer (a box, its image, a jslink to a slider) and a widget the solution displayed
    view = "application/vnd.jupyter.widget-view+json"
    state = {
        "box": {"model_name": "VBoxModel", "state": {"children": ["IPY_MODEL_img", "IPY_MODEL_slider"]}},
        "img": {"model_name": "ImageModel", "state": {"description": "public frame"}},
        "slider": {"model_name": "IntSliderModel", "state": {}},
        "link": {"model_name": "LinkModel", "state": {"source": ["IPY_MODEL_slider", "value"],
                                                      "target": ["IPY_MODEL_img", "value"]}},
        "secret": {"model_name": "LabelModel", "state": {"value": "QUOKKA caption of the solution"}},
    }
    nb = chapter()
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": state}}
    run = executed(chapter())
    run.metadata = nb.metadata
    run.cells[1].outputs.append(new_output("display_data", data={view: {"model_id": "box"}}))
    run.cells[6].outputs = [new_output("display_data", data={view: {"model_id": "secret"}})]
    term = edition.term_notebook(nb, run, "book/ch.ipynb")
    kept = term.metadata["widgets"]["application/vnd.jupyter.widget-state+json"]["state"]
    assert sorted(kept) == ["box", "img", "link", "slider"]
    assert_no_marker(json.dumps(term))
