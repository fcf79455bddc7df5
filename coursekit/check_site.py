"""Open every page of the built book in headless Chromium, offline, and check it as a reader sees it.

Usage: .venv/bin/python -m coursekit.check_site [_build/html] [--screenshots DIR] [--chromium PATH]

For each page listed in _toc.yml it serves _build/html on 127.0.0.1 and asserts:
  - no JavaScript error in the console and no failed request for the site's own files;
  - no request leaves 127.0.0.1 (such requests are blocked and reported: the site must work offline);
  - MathJax has typeset every formula (no raw `$$`, `\\begin{`, `\\(`... left in the text outside code);
  - every <img> has loaded (naturalWidth > 0);
  - a chapter (.ipynb) page shows as many figures in its cell outputs as the executed notebook
    (_build/jupyter_execute) has image outputs, and at least one;
  - ipywidgets with saved state are rendered by the (vendored) widget manager;
  - internal links (and their #anchors) resolve to files of the site;
  - a chapter page has the "open in Colab" launch button for this repository and branch;
  - pages in a numbered part of _toc.yml carry increasing chapter numbers.
A full-page screenshot of each page goes to _build/screenshots/. Exit status 1 lists every problem.
What runs inside each page is coursekit/check_site.js.
"""
from __future__ import annotations

import argparse
import functools
import http.server
import json
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import yaml

from coursekit.toc import source_of, toc_entries

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
# Raw TeX that MathJax should have replaced: display/inline delimiters, environments, or a $...$
# span holding a TeX command.
RAW_TEX = re.compile(r"\$\$|\\begin\{|\\\(|\\\[|\$[^$\n]*\\[A-Za-z]+[^$\n]*\$")
IMAGE_MIMES = ("image/png", "image/jpeg", "image/gif", "image/svg+xml")
PAGE_TIMEOUT_MS = 30_000


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
    links: int = 0

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
# Serving and browsing
# ----------------------------------------------------------------------------------------------

class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's name
        pass


def serve(directory: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve `directory` on a free port of 127.0.0.1 in a daemon thread."""
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


# Runs in each page: waits for MathJax, widgets and images, then describes what a reader sees.
INSPECT_JS = (Path(__file__).with_name("check_site.js")).read_text(encoding="utf-8")


def anchors_of(path: Path, cache: dict[Path, set[str]]) -> set[str]:
    """The id= and name= values of an HTML file (link targets for #fragments)."""
    if path not in cache:
        text = path.read_text(encoding="utf-8", errors="replace")
        cache[path] = set(re.findall(r'\s(?:id|name)="([^"]+)"', text))
    return cache[path]


def check_links(page: str, links: list[str], origin: str, html_dir: Path, report: Report,
                seen: set[str], cache: dict[Path, set[str]]) -> None:
    """Every link into the site points to an existing file and, for #anchors, an existing id."""
    for href in links:
        if not href.startswith(origin + "/"):
            continue  # external (not checked: offline) or javascript:/mailto:
        if href in seen:
            continue
        seen.add(href)
        report.links += 1
        parts = urlsplit(href)
        rel = unquote(parts.path).lstrip("/")
        target = html_dir / rel
        if target.is_dir():
            target = target / "index.html"
        if not target.is_file():
            report.add(page, f"broken internal link {rel} (no such file in the site)")
        elif parts.fragment and target.suffix == ".html" and unquote(parts.fragment) not in anchors_of(target, cache):
            report.add(page, f"broken internal link {rel}#{parts.fragment} (no such anchor)")


def check_page(browser, page: Page, origin: str, args: argparse.Namespace, report: Report,
               expected: int | None, colab: str | None, seen_links: set[str],
               anchor_cache: dict[Path, set[str]]) -> dict:
    """Open one page, run every check, save its screenshot; returns what the page showed."""
    name = page.html
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    tab = context.new_page()
    errors: list[str] = []

    def route(r) -> None:
        if urlsplit(r.request.url).hostname == "127.0.0.1":
            r.continue_()
        else:
            report.add(name, f"request to the network blocked: {r.request.url[:120]}")
            r.abort("blockedbyclient")

    context.route("**/*", route)
    tab.on("console", lambda m: errors.append(f"console {m.type}: {m.text[:300]}") if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(f"JavaScript error: {str(e)[:300]}"))
    tab.on("response", lambda r: errors.append(f"HTTP {r.status} for {r.url.replace(origin, '')}")
           if r.status >= 400 else None)
    tab.on("requestfailed", lambda r: errors.append(f"request failed: {r.url.replace(origin, '')} "
                                                    f"({r.failure})")
           if urlsplit(r.url).hostname == "127.0.0.1" else None)
    try:
        tab.goto(f"{origin}/{name}", wait_until="load", timeout=PAGE_TIMEOUT_MS)
        seen = tab.evaluate(INSPECT_JS)
        shot = args.screenshots / (page.docname.replace("/", "__") + ".png")
        try:
            tab.screenshot(path=str(shot), full_page=True, timeout=PAGE_TIMEOUT_MS)
        except Exception:  # a very long page can exceed Chromium's texture limit: keep the top
            tab.screenshot(path=str(shot), timeout=PAGE_TIMEOUT_MS)
    except Exception as exc:  # timeouts, crashes: the page is broken for a reader too
        report.add(name, f"could not be checked: {str(exc).splitlines()[0][:300]}")
        context.close()
        return {}
    context.close()

    for message in dict.fromkeys(errors):  # keep order, drop repeats
        report.add(name, message)

    # Math
    if seen["mathElements"] and not seen["mathjax"]:
        report.add(name, f"{seen['mathElements']} formulas but MathJax did not start "
                         f"({seen['mathjaxError'] or 'MathJax not loaded'})")
    for tex in seen["untypeset"]:
        report.add(name, f"formula not typeset by MathJax: {tex!r}")
    for err in seen["mathjaxErrors"]:
        report.add(name, f"MathJax error in a formula: {err[:120]!r}")
    for match in list(RAW_TEX.finditer(seen["text"]))[:3]:
        snippet = seen["text"][max(0, match.start() - 30):match.end() + 30].replace("\n", " ")
        report.add(name, f"raw TeX left in the text: ...{snippet}...")
    report.formulas += seen["formulas"]

    # Images and figures
    for img in seen["images"]:
        if not img["width"]:
            kind = "figure in a cell output" if img["output"] else "image"
            report.add(name, f"{kind} did not load: {img['src']}")
    shown = sum(1 for img in seen["images"] if img["output"] and img["width"])
    report.figures += shown
    if page.is_notebook:
        if expected is None:
            report.add(name, f"no executed notebook for {page.docname} under {args.executed}; "
                             "cannot know how many figures it should show")
        elif shown != expected:
            report.add(name, f"shows {shown} loaded figures in cell outputs, "
                             f"the executed notebook has {expected}")
        if shown == 0:
            report.add(name, "a chapter page without a single figure")

    # Widgets
    if seen["widgetViews"]:
        if not seen["widgetState"]:
            report.add(name, f"{seen['widgetViews']} widgets but no saved widget state: "
                             "they show nothing on the page")
        elif seen["widgetsRendered"] < seen["widgetViews"]:
            report.add(name, f"only {seen['widgetsRendered']} of {seen['widgetViews']} widgets rendered")
    report.widgets += seen["widgetsRendered"]

    # Links, launch button, page furniture
    check_links(name, seen["links"], origin, args.html_dir, report, seen_links, anchor_cache)
    if page.is_notebook and colab and not any(link.startswith(colab) for link in seen["links"]):
        report.add(name, f"no Colab launch button (a link starting {colab})")
    if not seen["title"].strip():
        report.add(name, "empty <title>")
    if not seen["favicon"]:
        report.add(name, "no favicon link")
    return seen


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
    args = parser.parse_args(argv)
    args.html_dir = args.html_dir.resolve()
    args.root = (args.root or args.html_dir.parent.parent).resolve()
    args.executed = (args.executed or args.html_dir.parent / "jupyter_execute").resolve()
    args.screenshots = (args.screenshots or args.html_dir.parent / "screenshots").resolve()

    start = time.monotonic()
    if not (args.html_dir / "index.html").is_file():
        print(f"site check: no built site at {args.html_dir} (run `make book` first)", file=sys.stderr)
        return 1
    if not Path(args.chromium).exists():
        print(f"site check: no Chromium at {args.chromium} "
              "(apt-get install -y chromium chromium-driver)", file=sys.stderr)
        return 1
    args.screenshots.mkdir(parents=True, exist_ok=True)
    for old in args.screenshots.glob("*.png"):
        old.unlink()

    from playwright.sync_api import sync_playwright

    report = Report()
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
    for problem in report.problems:
        print(f"PROBLEM {problem}")
    print(f"site check: {len(pages)} pages, {report.figures} figures, {report.formulas} formulas, "
          f"{report.widgets} widgets, {report.links} internal links, {len(report.problems)} problems "
          f"in {seconds:.0f} s (screenshots in {args.screenshots})")
    return 1 if report.problems else 0


if __name__ == "__main__":
    sys.exit(main())
