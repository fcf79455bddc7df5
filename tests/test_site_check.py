"""The browser checks of coursekit/check_site.py, each proven on a small fixture page with a
deliberate break (no book build needed): a slider whose link to its frames is removed, TeX left
untypeset, a formula wider than the column, a figure without alt text, a build machine's path; live
views (issue 24) with a tiny fake model that keep the contract, and one that breaks each promise.

Needs Chromium (/usr/bin/chromium) and the npm assets (`make assets`); skipped without them (the live
view tests need Chromium only)."""
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


# ----------------------------------------------------------------------------------------------
# Live views (issue 24): a fake runtime that keeps the contract with the check (funml_lib/live.js's
# contract) on a 2 x 2 "digit": model "lin" is clip(0.5 x + 0.25, 0, 1) per pixel, the latent
# view's decoder "dec" maps z = (z1, z2) to [z1, z2, z1 + z2, 0]. Each flag breaks one promise.
# ----------------------------------------------------------------------------------------------

needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Chromium at /usr/bin/chromium")

LIVE_RUNTIME = """(() => {
  const root = document.currentScript.closest('.funml-live');
  const text = root.querySelector('script.funml-live-data').textContent;
  const data = JSON.parse(text), flags = data.flags;
  const pad = root.querySelector('.funml-live-pad'), digits = root.querySelector('.funml-live-digits');
  const plane = root.querySelector('.funml-live-plane');
  let x = data.digits[0].slice(), z = [0, 0], shown = {};
  const run = (name, input) => name === 'lin'
    ? input.map(v => Math.min(1, Math.max(0, 0.5 * v + 0.25)))
    : [input[0], input[1], input[0] + input[1], 0];
  const view = {root, kind: root.dataset.funmlKind, run, reference: data.reference,
                tolerance: data.tolerance, quantization: data.quantization, lastUpdateMs: NaN,
                bytes: text.length + document.currentScript.textContent.length, state: () => shown};
  const update = () => {
    const t0 = performance.now();
    shown = {input: x.slice(), lin: run('lin', x)};
    if (view.kind === 'latent') shown.dec = run('dec', z);
    view.lastUpdateMs = performance.now() - t0;
  };
  let down = false;
  const cell = e => { const r = pad.getBoundingClientRect();
    return 2 * Math.floor(2 * (e.clientY - r.top) / r.height) + Math.floor(2 * (e.clientX - r.left) / r.width); };
  if (!flags.deadPad) {
    pad.addEventListener('pointerdown', e => { down = true; x[cell(e)] = 1; update(); });
    pad.addEventListener('pointermove', e => { if (down) { x[cell(e)] = 1; update(); } });
    window.addEventListener('pointerup', () => { down = false; });
  }
  if (!flags.deadKeys) digits.addEventListener('change', () => { x = data.digits[digits.selectedIndex].slice(); update(); });
  if (plane) {
    plane.addEventListener('pointermove', e => { if (e.buttons) { z = [e.offsetX / 100, e.offsetY / 100]; update(); } });
    plane.addEventListener('keydown', e => { if (e.key === 'ArrowRight') { z[0] += 0.1; update(); } });
  }
  if (!flags.showFallback) root.querySelector('.funml-live-fallback').hidden = true;
  view.ready = flags.neverReady ? new Promise(() => {}) : Promise.resolve().then(update);
  (window.funmlLive = window.funmlLive || []).push(view);
})();"""

LIVE_VIEW = """<div class="funml-live" data-funml-kind="{kind}" role="group" aria-label="A fixture live view">
<p class="funml-live-fallback">The live view needs JavaScript.</p>
<canvas class="funml-live-pad" width="80" height="80" aria-label="Draw here" style="border: 1px solid"></canvas>
<select class="funml-live-digits" aria-label="Test digit"><option>first</option><option>second</option></select>
{plane}<script type="application/json" class="funml-live-data">{data}</script>
<script>{runtime}</script></div>"""

LIVE_PAGE = """<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>live fixture</title></head>
<body><main><h1>Live fixture</h1>{body}</main></body></html>"""


def live_view(kind: str = "denoiser", **flags) -> str:
    """One fixture view; flags: wrongReference, deadPad, deadKeys, heavy, neverReady, showFallback."""
    reference = [{"model": "lin", "input": [0, 1, 0.5, 0.2], "output": [0.25, 0.75, 0.5, 0.35]}]
    if flags.get("wrongReference"):
        reference[0]["output"][3] = 0.36        # 0.5 * 0.2 + 0.25 = 0.35, not 0.36
    if kind == "latent":
        reference.append({"model": "dec", "input": [0.5, -1], "output": [0.5, -1, -0.5, 0]})
    data = {"digits": [[0, 0, 0, 0], [1, 0, 0, 1]], "reference": reference, "tolerance": 1e-3,
            "quantization": {r["model"]: 0 for r in reference}, "flags": flags}
    if flags.get("heavy"):
        data["weights"] = "A" * site_checks.LIVE_BUDGET    # as if 1 MB of weights were inlined
    plane = ('<canvas class="funml-live-plane" tabindex="0" width="100" height="100" '
             'aria-label="Latent plane"></canvas>\n' if kind == "latent" else "")
    return LIVE_VIEW.format(kind=kind, plane=plane, data=json.dumps(data), runtime=LIVE_RUNTIME)


def check_live_fixture(site, browser, body: str, expect: bool = True) -> tuple[list[str], dict]:
    root, origin = site
    (root / "live.html").write_text(LIVE_PAGE.format(body=body), encoding="utf-8")
    report, errors = Report(), []
    context, tab = check_site.open_page(browser, f"{origin}/live.html", "live.html", report, errors)
    try:
        result = site_checks.check_live("live.html", tab, report, expect, ready_ms=500)
    finally:
        context.close()
    assert errors == []
    return report, result


@needs_chromium
def test_live_views_that_keep_the_contract_pass(site, browser):
    report, result = check_live_fixture(site, browser, live_view() + live_view("latent"))
    assert report == []
    assert result["views"] == 2 and result["lastUpdateMs"] >= 0
    # the same page counted twice: by the views themselves and from the page's script texts
    assert result["bytes"] == result["domBytes"] > 2 * len(LIVE_RUNTIME)


BROKEN_LIVE = {
    "wrongReference": ["live view 1 (denoiser): run('lin', reference input 1) differs from torch by 0.01 "
                       "(max |run - output|), over the tolerance 0.001"],
    "deadPad": ["live view 1 (denoiser): drawing on the pad (pointer down, move, up) did not change state()"],
    "deadKeys": ["live view 1 (denoiser): ArrowDown on the digit picker (.funml-live-digits) did not change state()"],
    "heavy": ["live views: 1.00 MB of weights and code in the page's scripts, over the budget of 1.0 MB per page",
              "live views: 1.00 MB of weights and code (the views' bytes), over the budget of 1.0 MB per page"],
    "neverReady": ["live view 1 (denoiser): ready did not resolve within 0.5 s"],
    "showFallback": ["live view 1 (denoiser): its fallback sentence (.funml-live-fallback) is visible "
                     "while JavaScript runs"],
}


@needs_chromium
@pytest.mark.parametrize("flag", BROKEN_LIVE)
def test_each_broken_promise_of_a_live_view_is_one_exact_problem(site, browser, flag):
    report, _ = check_live_fixture(site, browser, live_view(**{flag: True}))
    assert report == BROKEN_LIVE[flag]


@needs_chromium
def test_a_latent_plane_that_ignores_the_reader_is_a_problem(site, browser):
    dead_plane = live_view("latent").replace("plane.addEventListener", "void ")
    report, _ = check_live_fixture(site, browser, dead_plane)
    assert report == ["live view 1 (latent): dragging on the latent plane did not change state()",
                      "live view 1 (latent): ArrowRight on the latent plane did not change state()"]


@needs_chromium
def test_no_live_view_where_the_notebook_calls_one_is_a_problem(site, browser):
    report, result = check_live_fixture(site, browser, "<p>frames only</p>")
    assert report == ["no live views (.funml-live) on a page whose notebook calls a live_...() function"]
    assert result == {"views": 0, "bytes": 0, "domBytes": 0, "lastUpdateMs": None,
                      "maxDiff": None}
    report, _ = check_live_fixture(site, browser, "<p>frames only</p>", expect=False)
    assert report == []


def test_a_page_expects_live_views_when_its_notebook_calls_a_live_function(tmp_path):
    import nbformat

    def page(code: str) -> check_site.Page:
        nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_markdown_cell("live_denoiser(model)"),
                                             nbformat.v4.new_code_cell(code)])
        nbformat.write(nb, tmp_path / "ch.ipynb")
        return check_site.Page("ch", tmp_path / "ch.ipynb", True)

    assert check_site.expects_live(page("view = funml_lib.live_denoiser(model, x)"))
    assert check_site.expects_live(page("live_latent(vae)"))
    assert not check_site.expects_live(page("deliver_live_x(1)\nlatent_explorer(vae)"))
    assert check_site.expects_explorers(page("latent_explorer(vae)"))


def test_print_weights_has_a_live_column(capsys):
    report = check_site.Report(weights={"book/a.html": {"html": 900_000, "images": 1_200_000, "widgets": 0,
                                                        "live": 412_345}})
    report.latency["book/a.html"] = 12.34
    report.agreement["book/a.html"] = 5.2e-6
    check_site.print_weights(report)
    check_site.print_latency(report)
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[-2:] == ["live", "kB"]
    assert lines[1].split() == ["book/a.html", "900", "1200", "0", "412"]
    assert lines[2].startswith("live views on book/a.html: slowest update 12.3 ms")
    assert lines[2].endswith("largest |page - torch| 5.2e-06 (tolerance 2e-3)")


@needs_chromium
def test_funml_lib_live_views_keep_the_contract_with_the_check(site, browser):
    # the real runtime (funml_lib/live.js) on small untrained models: what the chapters ship passes
    import torch

    from funml_lib.live import live_denoiser, live_latent, live_sparse_code
    from funml_lib.models import VAE, FCAutoencoder, SparseAutoencoder

    torch.manual_seed(0)
    x, y = torch.rand(20, 784), torch.arange(20) % 10
    views = [live_denoiser({"linear": FCAutoencoder(4, (16,), nonlinear=False),
                            "nonlinear": FCAutoencoder(4, (16,))}, x, y),
             live_sparse_code({"plain": SparseAutoencoder(16), "KL": SparseAutoencoder(16)}, x, y, k=4),
             live_latent(VAE(latent_dim=2, hidden_dim=32), x, y)]
    report, result = check_live_fixture(site, browser, "".join(v.html for v in views))
    assert report == []
    assert result["views"] == 3 and result["lastUpdateMs"] >= 0
    assert 0 <= result["maxDiff"] <= site_checks.LIVE_TOLERANCE   # the page runs what torch ran
    assert result["bytes"] == result["domBytes"] == sum(v.bytes for v in views)
