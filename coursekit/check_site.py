"""Open every page of the built book in headless Chromium, offline, and check it as a reader sees it.

Usage: .venv/bin/python -m coursekit.check_site [_build/html] [--screenshots DIR] [--chromium PATH]

For each page listed in _toc.yml it serves _build/html on 127.0.0.1 and asserts:
  - no JavaScript error in the console and no failed request for the site's own files;
  - no request leaves 127.0.0.1 (such requests are blocked and reported: the site must work offline);
  - MathJax has typeset every formula (no `$`, `\\mathbf`, `\\frac`... left in the text outside code);
  - every <img> has loaded (naturalWidth > 0); every figure and explorer frame has a real alt text;
  - a chapter (.ipynb) page shows as many figures in its cell outputs as the executed notebook
    (_build/jupyter_execute) has image outputs, and at least one;
  - ipywidgets with saved state are rendered by the (vendored) widget manager; a page whose notebook
    has explorers shows them, and moving each slider with the keyboard shows the saved frame for
    its new position;
  - at 1280 px and 390 px wide, no math, code, figure or widget is wider than its column without a
    scroll box of its own; at 1280 px no code cell scrolls sideways;
  - no absolute path of the build machine (the repository, /home, /tmp, /work, ...) in the page;
  - page weight: <= 1.5 MB of images per chapter page, <= 1 MB of widget state per page (reported);
  - live views (issue 24; funml_lib/live.js, coursekit/site_live.js): a page whose notebook calls a
    live_...() function shows at least one; every div.funml-live registers on window.funmlLive and its
    ready resolves (within 15 s); run(model, input) matches every reference output torch computed
    within the view's tolerance (<= 2e-3); drawing on the pad with pointer events, ArrowDown on the
    digit picker and, for the latent view, a drag on and an arrow key on the plane change state();
    the fallback sentence is hidden while JavaScript runs; <= 1 MB of weights and code per page, as
    the views count it and as counted from the page's scripts; lastUpdateMs after the interactions is
    printed per page (never a problem: benchmarks/live_latency.py measures latency);
  - axe-core finds no serious or critical accessibility violation;
  - internal links (and their #anchors) resolve to files of the site;
  - a chapter page has the "open in Colab" launch button for this repository and branch;
  - pages in a numbered part of _toc.yml carry increasing chapter numbers.
  - no request to another host, however late: each page stays open a while and its timers are run
    minutes ahead (Playwright's clock) before it closes; Chromium resolves no other host anyway;
  - no harness marker (NBVAL_..., BEGIN/END SOLUTION, BEGIN/END HIDDEN TESTS) in a page's code cells;
  - with --edition term (the site of `make book EDITION=term`): no solution text, answer code, hidden
    test or rubric of the source chapters in any file of the site or in the student notebooks on
    the branch its launch buttons open, and no _sources/ copy (coursekit.edition.term_problems).
A full-page screenshot of each page at each width goes to _build/screenshots/. Exit status 1 lists
every problem. What runs inside each page is coursekit/check_site.js (and the site_*.js files);
the checks themselves are in coursekit/site_checks.py.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from coursekit import edition, site_checks, site_leaks
from coursekit.site_browser import CHROMIUM_ARGS, open_page, screenshot, serve, watch_late_requests
from coursekit.toc import source_of, toc_entries

RAW_TEX = site_checks.RAW_TEX
EXPLORER_CALL = re.compile(r"\b\w+_explorer\(")
LIVE_CALL = re.compile(r"\blive_\w+\(")
IMAGE_MIMES = ("image/png", "image/jpeg", "image/gif", "image/svg+xml")


@dataclass
class Page:
    """One entry of _toc.yml: its source file, its HTML file and where it sits in the outline."""
    docname: str            # e.g. "book/02_sparse_autoencoders"
    source: Path | None     # the .md / .ipynb it is built from
    numbered: bool

    @property
    def is_notebook(self) -> bool:
        return self.source is not None and self.source.suffix == ".ipynb"

    @property
    def html(self) -> str:
        return self.docname + ".html"


@dataclass
class Report:
    problems: list[str] = field(default_factory=list)
    figures: int = 0
    formulas: int = 0
    widgets: int = 0
    explorers: int = 0
    live: int = 0
    latency: dict[str, float | None] = field(default_factory=dict)
    agreement: dict[str, float | None] = field(default_factory=dict)   # max |run - torch| per page
    links: int = 0
    weights: dict[str, dict[str, int]] = field(default_factory=dict)
    accessibility: dict[str, int] = field(default_factory=dict)

    def add(self, page: str, message: str) -> None:
        self.problems.append(f"{page}: {message}")


# ----------------------------------------------------------------------------------------------
# What the site should contain: pages from _toc.yml, figure counts from the executed notebooks
# ----------------------------------------------------------------------------------------------

def toc_pages(root: Path, toc_file: Path | None = None) -> list[Page]:
    """The pages _toc.yml lists, in reading order, with whether their part is numbered."""
    return [Page(e.docname, source_of(root, e.docname), e.numbered)
            for e in toc_entries(toc_file or root / "_toc.yml")]


def html_priority() -> dict[str, int | None]:
    """myst-nb's order for choosing one mime type of an output in HTML (lower wins)."""
    try:
        from myst_nb.core.render import base_render_priority
        return base_render_priority()["html"]
    except Exception:  # an older/newer myst-nb: its long-standing default order
        order = ["application/vnd.jupyter.widget-view+json", "application/javascript", "text/html",
                 "image/svg+xml", "image/png", "image/gif", "image/jpeg", "text/markdown",
                 "text/latex", "text/plain"]
        return {mime: 10 * (i + 1) for i, mime in enumerate(order)}


def expected_figures(executed: Path) -> int:
    """Image outputs that myst-nb renders as <img>: the chosen mime type of an output is an image."""
    priority = html_priority()
    nb = json.loads(executed.read_text(encoding="utf-8"))
    count = 0
    for cell in nb.get("cells", []):
        if cell.get("cell_type") != "code":
            continue
        meta = cell.get("metadata", {})
        tags = set(meta.get("tags", []))
        if tags & {"remove-output", "remove_output", "remove-cell", "remove_cell"}:
            continue
        if meta.get("mystnb", {}).get("remove_code_outputs"):
            continue
        for out in cell.get("outputs", []):
            data = out.get("data", {}) if out.get("output_type") in ("display_data", "execute_result") else {}
            ranked = sorted((priority[m], m) for m in data if priority.get(m) is not None)
            if ranked and ranked[0][1] in IMAGE_MIMES:
                count += 1
    return count


def colab_prefix(root: Path) -> str:
    """The start of a chapter's Colab link: <colab_url>/github/<owner>/<repo>/blob/<branch>/[<path_to_book>/]."""
    cfg = yaml.safe_load((root / "_config.yml").read_text(encoding="utf-8"))
    repo = cfg.get("repository", {})
    slug = repo.get("url", "").rstrip("/").split("github.com/")[-1]
    colab = cfg.get("launch_buttons", {}).get("colab_url", "https://colab.research.google.com").rstrip("/")
    book_path = (repo.get("path_to_book") or "").strip("/")
    return f"{colab}/github/{slug}/blob/{repo.get('branch', 'main')}/" + (book_path + "/" if book_path else "")


# ----------------------------------------------------------------------------------------------
# Browsing
# ----------------------------------------------------------------------------------------------

# Runs in each page: waits for MathJax, widgets and images, then describes what a reader sees.
INSPECT_JS = (Path(__file__).with_name("check_site.js")).read_text(encoding="utf-8")
# The images again after the explorers were driven (their frames' alt texts are set by the page).
ALT_JS = ("() => [...document.images].map(i => ({src: i.getAttribute('src'), width: i.naturalWidth, "
          "alt: i.getAttribute('alt'), role: i.getAttribute('role'), widget: !!i.closest('.jupyter-widgets'), "
          "output: !!i.closest('div.cell_output') && !i.closest('.jupyter-widgets')}))")


def calls(page: Page, pattern: re.Pattern) -> bool:
    """Whether a code cell of the page's notebook matches `pattern`."""
    if not page.is_notebook:
        return False
    nb = json.loads(page.source.read_text(encoding="utf-8"))
    return any(c.get("cell_type") == "code" and pattern.search("".join(c.get("source", "")))
               for c in nb.get("cells", []))


def expects_explorers(page: Page) -> bool:
    """Whether the page's notebook calls an explorer (kl_explorer(...), latent_explorer(...), ...)."""
    return calls(page, EXPLORER_CALL)


def expects_live(page: Page) -> bool:
    """Whether the page's notebook calls a live view (live_denoiser(...), live_latent(...), ...)."""
    return calls(page, LIVE_CALL)


def check_page(browser, page: Page, origin: str, args: argparse.Namespace, report: Report,
               expected: int | None, colab: str | None, seen_links: set[str],
               anchor_cache: dict[Path, set[str]]) -> dict:
    """Open one page, run every check, save its screenshots; returns what the page showed."""
    name = page.html
    errors: list[str] = []
    context = None
    try:
        context, tab = open_page(browser, f"{origin}/{name}", name, report, errors)
        seen = tab.evaluate(INSPECT_JS)
        shot = args.screenshots / page.docname.replace("/", "__")
        site_checks.check_overflow(name, tab, 1280, report)
        report.explorers += site_checks.check_explorers(name, tab, report, expects_explorers(page))
        live = site_checks.check_live(name, tab, report, expects_live(page))
        report.live += live["views"]
        if live["views"]:
            report.latency[name] = live["lastUpdateMs"]
            report.agreement[name] = live["maxDiff"]
        seen = {**seen, "images": tab.evaluate(ALT_JS)} if seen.get("widgetViews") else seen
        site_checks.check_machine_paths(name, tab.content(), args.root, report)
        for rule, count in site_checks.check_accessibility(name, tab, report).items():
            report.accessibility[rule] = report.accessibility.get(rule, 0) + count
        screenshot(tab, shot.with_suffix(".png"))
        for width in site_checks.WIDTHS[1:]:
            tab.set_viewport_size({"width": width, "height": 900})
            tab.wait_for_timeout(300)
            site_checks.check_overflow(name, tab, width, report)
            screenshot(tab, shot.with_name(f"{shot.name}@{width}.png"))
        watch_late_requests(context, tab)
    except Exception as exc:  # timeouts, crashes: the page is broken for a reader too
        report.add(name, f"could not be checked: {str(exc).splitlines()[0][:300]}")
        if context is not None:
            context.close()
        return {}
    context.close()

    for message in dict.fromkeys(errors):  # keep order, drop repeats
        report.add(name, message)

    site_checks.check_math(name, seen, report)
    report.formulas += seen["formulas"]

    site_checks.check_figures(name, seen, expected, page, args.executed, report)
    site_checks.check_alt_text(name, seen, report)
    weight = {**site_checks.page_weight(args.html_dir, name, seen), "live": live["domBytes"]}
    report.weights[name] = weight
    site_checks.check_weight(name, weight, page.is_notebook, report)
    report.figures += sum(1 for img in seen["images"] if img["output"] and img["width"])
    site_checks.check_widgets(name, seen, report)
    report.widgets += seen["widgetsRendered"]
    site_checks.check_links(name, seen["links"], origin, args.html_dir, report, seen_links, anchor_cache)
    site_checks.check_furniture(name, seen, colab if page.is_notebook else None, report)
    return seen


def print_weights(report: Report) -> None:
    """Page weights, heaviest first: HTML, images, saved widget state, live views' weights and code
    (kB; the live views are inline, so their bytes are part of the HTML's too)."""
    print(f"{'page':<48}{'HTML kB':>9}{'images kB':>11}{'widgets kB':>12}{'live kB':>9}")
    for page, w in sorted(report.weights.items(), key=lambda kv: -(kv[1]["html"] + kv[1]["images"])):
        print(f"{page:<48}{w['html'] / 1e3:>9.0f}{w['images'] / 1e3:>11.0f}{w['widgets'] / 1e3:>12.0f}"
              f"{w.get('live', 0) / 1e3:>9.0f}")


def print_latency(report: Report) -> None:
    """The slowest update (lastUpdateMs) of each page's live views after the check's interactions, and
    the largest difference between the page's outputs and torch's on the reference inputs."""
    for page, ms in report.latency.items():
        shown = "no interaction changed a view" if ms is None else f"{ms:.1f} ms"
        diff = report.agreement.get(page)
        agree = "" if diff is None else f"; largest |page - torch| {diff:.2g} (tolerance 2e-3)"
        print(f"live views on {page}: slowest update {shown} (budget 50 ms; "
              f"benchmarks/live_latency.py measures it){agree}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html_dir", nargs="?", default="_build/html", type=Path)
    parser.add_argument("--root", type=Path, default=None,
                        help="book root holding _toc.yml and _config.yml (default: html_dir/../..)")
    parser.add_argument("--toc", type=Path, default=None, help="table of contents (default: root/_toc.yml)")
    parser.add_argument("--executed", type=Path, default=None,
                        help="executed notebooks (default: html_dir/../jupyter_execute)")
    parser.add_argument("--screenshots", type=Path, default=None,
                        help="screenshot folder (default: html_dir/../screenshots)")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    parser.add_argument("--edition", choices=["full", "term"], default="full",
                        help="term: the site of `make book EDITION=term` (_build/term/html), checked for "
                             "leaks too; its book root is _build/term_src, the chapters' is the repository")
    parser.add_argument("--no-browser", action="store_true",
                        help="only the checks of the files (markers; leaks with --edition term)")
    args = parser.parse_args(argv)
    args.html_dir = args.html_dir.resolve()
    book = args.html_dir.parent.parent   # _build/html -> the repository; _build/term/html -> _build
    if args.edition == "term":
        book = book.parent
        args.root = (args.root or book / edition.TERM_SRC).resolve()
        args.executed = (args.executed or args.root).resolve()   # the term pages keep their outputs
    args.root = (args.root or book).resolve()
    args.executed = (args.executed or args.html_dir.parent / "jupyter_execute").resolve()
    args.screenshots = (args.screenshots or args.html_dir.parent / "screenshots").resolve()

    start = time.monotonic()
    if not (args.html_dir / "index.html").is_file():
        print(f"site check: no built site at {args.html_dir} (run `make book` first)", file=sys.stderr)
        return 1
    if not args.no_browser and not Path(args.chromium).exists():
        print(f"site check: no Chromium at {args.chromium} "
              "(apt-get install -y chromium chromium-driver)", file=sys.stderr)
        return 1

    report = Report()
    report.problems += site_leaks.marker_problems(args.html_dir)
    if args.edition == "term":
        report.problems += edition.term_problems(book.resolve(), args.html_dir)
    if args.no_browser:
        for problem in report.problems:
            print(f"PROBLEM {problem}")
        print(f"site check of the files of {args.html_dir} ({args.edition} edition): "
              f"{len(report.problems)} problems in {time.monotonic() - start:.0f} s")
        return 1 if report.problems else 0
    args.screenshots.mkdir(parents=True, exist_ok=True)
    for old in args.screenshots.glob("*.png"):
        old.unlink()

    from playwright.sync_api import sync_playwright

    pages = toc_pages(args.root, args.toc)
    colab_start = colab_prefix(args.root)
    server, origin = serve(args.html_dir)
    seen_links: set[str] = set()
    anchor_cache: dict[Path, set[str]] = {}
    numbers: list[tuple[str, int]] = []
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            for page in pages:
                if page.source is None:
                    report.add(page.html, f"_toc.yml lists {page.docname} but there is no such source file")
                if not (args.html_dir / page.html).is_file():
                    report.add(page.html, "listed in _toc.yml but not built")
                    continue
                expected = colab = None
                if page.is_notebook:
                    executed = args.executed / (page.docname + ".ipynb")
                    expected = expected_figures(executed) if executed.is_file() else None
                    colab = colab_start + page.docname + ".ipynb"
                seen = check_page(browser, page, origin, args, report, expected, colab,
                                  seen_links, anchor_cache)
                if page.numbered and seen:
                    number = re.match(r"(\d+)", seen.get("sectionNumber") or "")
                    if not number:
                        report.add(page.html, "in a numbered part of _toc.yml but its title has no number")
                    else:
                        numbers.append((page.html, int(number.group(1))))
            browser.close()
    finally:
        server.shutdown()
    for (_, a), (name, b) in zip(numbers, numbers[1:]):
        if b <= a:
            report.add(name, f"chapter number {b} does not follow {a}")

    seconds = time.monotonic() - start
    print_weights(report)
    print_latency(report)
    if report.accessibility:
        print("axe-core violations (all impacts), elements per rule: " +
              ", ".join(f"{k} {v}" for k, v in sorted(report.accessibility.items())))
    for problem in report.problems:
        print(f"PROBLEM {problem}")
    print(f"site check: {len(pages)} pages, {report.figures} figures, {report.formulas} formulas, "
          f"{report.widgets} widgets ({report.explorers} explorers driven), {report.live} live views, "
          f"{report.links} internal links, "
          f"{len(report.problems)} problems "
          f"in {seconds:.0f} s (screenshots in {args.screenshots})")
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
