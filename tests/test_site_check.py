"""The browser checks of coursekit/check_site.py, each proven on a small fixture page with a
deliberate break (no book build needed): a slider whose link to its frames is removed, TeX left
untypeset, a formula wider than the column, a figure without alt text, a build machine's path.

Needs Chromium (/usr/bin/chromium) and the npm assets (`make assets`); skipped without them."""
from __future__ import annotations

import functools
import http.server
import json
import shutil
import threading
from pathlib import Path

import pytest

from coursekit import check_site, site_checks, site_leaks

ROOT = Path(__file__).resolve().parents[1]
STATIC = ROOT / "book" / "_static"
CHROMIUM = "/usr/bin/chromium"
needs_browser = pytest.mark.skipif(
    not (Path(CHROMIUM).exists() and (STATIC / "vendor/html-manager/embed-amd.js").is_file()
         and site_checks.AXE_JS.is_file()),
    reason="needs Chromium and the vendored site assets (make chromium assets)")

PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>fixture</title>
<link rel="stylesheet" href="_static/funml.css">
<style>article {{ width: 700px; }} {style}</style>
<script src="_static/vendor/requirejs/require.js"></script>
<script src="_static/funml-widgets.js"></script>
<script src="_static/vendor/html-manager/embed-amd.js"></script>
{state}</head><body><main><article class="bd-article"><h1>Fixture</h1>{body}</article></main></body></html>"""


class Report(list):
    def add(self, page: str, message: str) -> None:
        self.append(message)


def explorer_state(drop_links: bool = False) -> tuple[str, str]:
    """The saved state and view of a two-slider explorer (3 x 2 frames), as a notebook build saves them."""
    import numpy as np
    from ipywidgets.embed import embed_data

    from funml_lib.frames import control, image_png, linked_frames

    controls = [control("a", "a", [0.1, 0.2, 0.3]), control("b", "b", [1, 2])]
    frames = {(i, j): image_png(np.full((4, 4), (2 * i + j) / 5), scale=8) for i in range(3) for j in range(2)}
    box, _ = linked_frames(controls, frames, "A fixture explorer: gray level 2a + b.")
    data = embed_data(views=[box])
    state = data["manager_state"]
    if drop_links:
        state["state"] = {k: v for k, v in state["state"].items() if "Link" not in v["model_name"]}
    view = json.dumps(data["view_specs"][0])
    return (f'<script type="application/vnd.jupyter.widget-state+json">{json.dumps(state)}</script>',
            f'<div class="cell_output"><script type="application/vnd.jupyter.widget-view+json">{view}</script></div>')


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """A served folder with the book's static files; yields (folder, origin)."""
    root = tmp_path_factory.mktemp("site")
    (root / "_static").symlink_to(STATIC)
    server, origin = check_site.serve(root)
    yield root, origin
    server.shutdown()


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=check_site.CHROMIUM_ARGS)
        yield b
        b.close()


def open_fixture(site, browser, name: str, body: str, state: str = "", style: str = ""):
    root, origin = site
    (root / name).write_text(PAGE.format(body=body, state=state, style=style), encoding="utf-8")
    report, errors = Report(), []
    context, tab = check_site.open_page(browser, f"{origin}/{name}", name, report, errors)
    return context, tab, report, errors


@needs_browser
def test_explorer_check_passes_on_linked_frames_and_fails_without_the_link(site, browser):
    state, view = explorer_state()
    context, tab, report, errors = open_fixture(site, browser, "linked.html", view, state)
    tab.evaluate(check_site.INSPECT_JS)
    assert site_checks.check_explorers("linked.html", tab, report, expect=True) == 1
    alt = tab.evaluate("() => document.querySelector('.funml-explorer img').alt")
    context.close()
    assert report == [] and errors == []
    assert alt.startswith("A fixture explorer") and "a = " in alt   # funml-widgets.js: alt from caption

    state, view = explorer_state(drop_links=True)
    context, tab, report, errors = open_fixture(site, browser, "unlinked.html", view, state)
    tab.evaluate(check_site.INSPECT_JS)
    site_checks.check_explorers("unlinked.html", tab, report, expect=True)
    context.close()
    assert any("the slider moved" in p and "frame shown did not change" in p for p in report), report


@needs_browser
def test_no_explorer_where_the_notebook_has_one_is_a_problem(site, browser):
    context, tab, report, _ = open_fixture(site, browser, "none.html", "<p>no widgets</p>")
    site_checks.check_explorers("none.html", tab, report, expect=True)
    context.close()
    assert report == ["no explorer widgets found on a page whose notebook has explorers"]


@needs_browser
def test_untypeset_tex_in_the_text_is_a_problem(site, browser):
    # issue 16's broken line: a paragraph line starting with "+" became a list item, its TeX raw
    body = ("<p>The exact term is</p><ul><li><p>$\\mathbb{E}_q[\\log p(x|z)] = "
            "\\operatorname{tr}(\\Sigma)$</p></li></ul><pre>code may say $HOME and \\frac</pre>")
    context, tab, report, _ = open_fixture(site, browser, "tex.html", body)
    seen = tab.evaluate(check_site.INSPECT_JS)
    context.close()
    site_checks.check_math("tex.html", seen, report)
    assert report and all("raw TeX left in the text" in p for p in report)
    assert "mathbb" in report[0] and "HOME" not in " ".join(report)


@needs_browser
def test_a_formula_wider_than_the_column_needs_its_own_scroll_box(site, browser):
    wide = '<div class="math" style="white-space: nowrap">' + "x + " * 400 + "y</div>"
    for style, problems in (("div.math { overflow: visible !important; }", True), ("", False)):
        context, tab, report, _ = open_fixture(site, browser, "wide.html", wide, style=style)
        for width in site_checks.WIDTHS:
            tab.set_viewport_size({"width": width, "height": 800})
            site_checks.check_overflow("wide.html", tab, width, report)
        context.close()
        if problems:   # without book/_static/funml.css's scroll box: cut off, at both widths
            assert len(report) == 2 and all("no scroll box" in p for p in report), report
        else:          # with it (the book's CSS): the formula scrolls inside its box
            assert report == [], report


@needs_browser
def test_axe_core_audit_reports_an_image_without_alt(site, browser):
    body = '<div class="cell_output"><img src="_static/logo.png"></div>'
    context, tab, report, _ = open_fixture(site, browser, "axe.html", body)
    found = site_checks.check_accessibility("axe.html", tab, report)
    context.close()
    assert "image-alt" in found
    assert any("accessibility (critical): image-alt" in p for p in report), report


def test_machine_paths_in_a_copy_of_a_page_are_problems(tmp_path):
    page = ("<p>test: 10,000 digits from IDX files in the FUNML_DATA folder</p>"
            '<a href="https://github.com/home/x">link</a>')
    report = Report()
    site_checks.check_machine_paths("p.html", page, ROOT, report)
    assert report == []
    broken = page.replace("the FUNML_DATA folder", f"{ROOT}/data/mnist") + "<pre>/root/.cache/x</pre>"
    site_checks.check_machine_paths("p.html", broken, ROOT, report)
    assert len(report) >= 2 and str(ROOT) in report[0] and any("/root/.cache" in p for p in report)


LATE_SCRIPT = """<p>A page that asks another host for a script five seconds after it loaded.</p>
<script>setTimeout(() => { const s = document.createElement("script");
  s.src = "http://cdn.example.com/late.js"; document.head.appendChild(s); }, 5000);</script>"""


@needs_browser
def test_a_script_injected_after_five_seconds_is_caught(site, browser):
    # issue 21: the check closed each page before such a timer fired; now the page's clock is run ahead
    context, tab, report, _ = open_fixture(site, browser, "late.html", LATE_SCRIPT)
    tab.evaluate(check_site.INSPECT_JS)
    check_site.watch_late_requests(context, tab)
    context.close()
    assert report == ["request to the network blocked: http://cdn.example.com/late.js"], report

    context, tab, report, _ = open_fixture(site, browser, "early.html", "<p>no timers</p>")
    check_site.watch_late_requests(context, tab)
    context.close()
    assert report == []


def test_harness_markers_are_dropped_from_displayed_code_and_nothing_else():
    import sys

    from docutils import nodes
    from docutils.utils import new_document

    sys.path.insert(0, str(ROOT / "book" / "_ext"))
    try:
        import funml_site
    finally:
        sys.path.remove(str(ROOT / "book" / "_ext"))
    code = ("# NBVAL_CHECK_OUTPUT\nimport math\n\n### BEGIN SOLUTION\ndef f(x):\n    ### begin solution\n"
            "    return 2 * x  # twice\n    ### END SOLUTION\n### END SOLUTION\n"
            "### BEGIN HIDDEN TESTS\nassert f(1) == 2  # NBVAL_IGNORE_OUTPUT\n### END HIDDEN TESTS")
    doc = new_document("fixture")
    cell = nodes.container(nb_element="cell_code_source")
    cell += nodes.literal_block(code, code)
    other = nodes.literal_block(code, code)   # a code block of a Markdown page: left alone
    doc += [cell, other]
    funml_site.strip_harness_markers(None, doc)
    assert cell.astext() == "import math\n\ndef f(x):\n    return 2 * x  # twice\nassert f(1) == 2"
    assert other.astext() == code
    assert site_leaks.MARKER.search(code) and not site_leaks.MARKER.search(cell.astext())


def test_marker_check_fails_on_a_page_that_shows_a_marker(tmp_path):
    page = ('<div class="cell docutils container"><div class="cell_input docutils container">'
            '<div class="highlight-ipython3 notranslate"><div class="highlight"><pre>'
            '<span class="c1"># NBVAL_CHECK_OUTPUT</span>\n<span class="n">x</span> = 1</pre></div></div></div></div>'
            '<p>Write your code between <code>### BEGIN SOLUTION</code> and its end marker.</p>')
    (tmp_path / "book").mkdir()
    (tmp_path / "book" / "ch.html").write_text(page, encoding="utf-8")
    assert site_leaks.marker_problems(tmp_path) == [
        "book/ch.html: harness marker shown in a code cell: '# NBVAL_CHECK_OUTPUT'"]
    (tmp_path / "book" / "ch.html").write_text(page.replace("# NBVAL_CHECK_OUTPUT", "# a comment"))
    assert site_leaks.marker_problems(tmp_path) == []   # prose may name the markers
