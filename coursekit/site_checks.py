"""The checks coursekit/check_site.py runs on each page, one function per check.

Each takes what a page showed (the dict coursekit/check_site.js returns, or a Playwright page) and
adds problems to a Report (anything with `.add(page, message)`). They are separate from the browser
plumbing so that tests can run each one on a small fixture page with a deliberate break.
"""
from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

HERE = Path(__file__).parent
OVERFLOW_JS = (HERE / "site_overflow.js").read_text(encoding="utf-8")
EXPLORERS_JS = (HERE / "site_explorers.js").read_text(encoding="utf-8")
AXE_JS = HERE.parent / "node_modules" / "axe-core" / "axe.min.js"   # `make assets` installs it (npm ci)

# TeX a reader should never see: a dollar sign, or a backslash command such as \mathbf or \frac,
# outside MathJax's output and outside code, or a \( \) \[ \] delimiter (\n and the like are left alone).
RAW_TEX = re.compile(r"\$|\\[A-Za-z]{2,}|\\[()[\]]")
# Absolute paths of a build machine; a path inside a URL (https://host/home/...) is not one.
MACHINE_PATH = re.compile(r"(?<![\w.:/%-])(?:/(?:root|home|tmp|work|Users|private/var|var/folders|mnt|opt/build)"
                          r"(?=[/\"'<\s])|[A-Za-z]:\\\\?(?:Users|home)\\)[^\s\"'<>]*")
IMAGE_FILE = re.compile(r"(^|/)[^/\s]+\.(png|jpe?g|gif|svg|webp)$", re.IGNORECASE)
IMAGE_BUDGET = 1_500_000     # bytes of images per chapter page (issue 13)
WIDGET_BUDGET = 1_000_000    # bytes of saved widget state per page (issue 14: explorers add <= 1 MB)
WIDTHS = (1280, 390)         # a laptop and a phone (issue 16)
BLOCKING_IMPACTS = ("serious", "critical")


def check_math(page: str, seen: dict, report: Any) -> None:
    """MathJax started, typeset every formula without errors, and no TeX is left in the visible text."""
    if seen["mathElements"] and not seen["mathjax"]:
        report.add(page, f"{seen['mathElements']} formulas but MathJax did not start "
                         f"({seen['mathjaxError'] or 'MathJax not loaded'})")
    for tex in seen["untypeset"]:
        report.add(page, f"formula not typeset by MathJax: {tex!r}")
    for err in seen["mathjaxErrors"]:
        report.add(page, f"MathJax error in a formula: {err[:120]!r}")
    text = seen["text"]
    for match in list(RAW_TEX.finditer(text))[:3]:
        snippet = text[max(0, match.start() - 40):match.end() + 40].replace("\n", " ")
        report.add(page, f"raw TeX left in the text: ...{snippet}...")


def check_alt_text(page: str, seen: dict, report: Any) -> None:
    """Every figure and every explorer frame has a real alt text (not empty, not a file path)."""
    for img in seen["images"]:
        if not (img["output"] or img["widget"]) or img.get("role") == "presentation":
            continue
        alt = (img.get("alt") or "").strip()
        kind = "explorer frame" if img["widget"] else "figure"
        if not alt:
            report.add(page, f"{kind} without alt text: {img['src'][:80]}")
        elif IMAGE_FILE.search(alt) or alt == img["src"]:
            report.add(page, f"{kind} whose alt text is a file path ({alt[:60]!r}): describe what it shows")


def page_weight(html_dir: Path, page: str, seen: dict) -> dict[str, int]:
    """Bytes a reader downloads for the page itself: its HTML, its images, its saved widget state."""
    html_file = html_dir / page
    html = html_file.read_text(encoding="utf-8", errors="replace")
    state = re.search(r'<script type="application/vnd.jupyter.widget-state\+json">(.*?)</script>', html, re.S)
    images = 0
    for src in {img["src"] for img in seen["images"] if img["src"] and not img["src"].startswith(("data:", "blob:"))}:
        path = (html_file.parent / src.split("?")[0]).resolve()
        if path.is_file():
            images += path.stat().st_size
    return {"html": len(html.encode()), "images": images, "widgets": len(state.group(1).encode()) if state else 0}


def check_weight(page: str, weight: dict[str, int], is_chapter: bool, report: Any) -> None:
    if is_chapter and weight["images"] > IMAGE_BUDGET:
        report.add(page, f"{weight['images'] / 1e6:.2f} MB of images, over the budget of "
                         f"{IMAGE_BUDGET / 1e6:.1f} MB per chapter page")
    if weight["widgets"] > WIDGET_BUDGET:
        report.add(page, f"{weight['widgets'] / 1e6:.2f} MB of saved widget state (explorer frames), over "
                         f"the budget of {WIDGET_BUDGET / 1e6:.1f} MB per page")


def check_machine_paths(page: str, html: str, root: Path, report: Any) -> None:
    """No absolute path of the machine that built the book (its repository, /home, /tmp, ...)."""
    found = []
    if str(root) not in ("/", "") and str(root) in html:
        found.append(str(root))
    found += [m.group(0) for m in MACHINE_PATH.finditer(html)]
    for path in list(dict.fromkeys(found))[:3]:
        i = html.find(path)
        context = re.sub(r"<[^>]*>|\s+", " ", html[max(0, i - 60):i + len(path) + 20]).strip()
        report.add(page, f"absolute path of the build machine in the page: {path[:80]!r} (...{context[:140]}...)")


def check_overflow(page: str, tab: Any, width: int, report: Any) -> None:
    """Math, code, figures, widgets fit their column or scroll in their own box; at the widest
    width, code cells do not scroll sideways either (lines <= 79 characters)."""
    seen = tab.evaluate(OVERFLOW_JS)
    for what in seen["overflow"][:5]:
        report.add(page, f"at {width} px: wider than its container, no scroll box: {what}")
    if width == max(WIDTHS):
        for what in seen["codeScroll"][:3]:
            report.add(page, f"at {width} px: code cell scrolls sideways (a line too long): {what}")


def check_explorers(page: str, tab: Any, report: Any, expect: bool) -> int:
    """Move every slider of every explorer with the keyboard: the frame shown must change and be the
    saved frame for the slider's new position, and the readout must show the new value. Returns the
    number of explorers found."""
    found = tab.evaluate(EXPLORERS_JS, None)
    if expect and not found:
        report.add(page, "no explorer widgets found on a page whose notebook has explorers")
    for k, explorer in enumerate(found):
        if not explorer["rendered"]:
            report.add(page, f"explorer {k + 1} was not rendered")
            continue
        for s, slider in enumerate(explorer["sliders"]):
            _move(page, tab, k, s, len(slider["labels"]), report)
    return len(found)


def _move(page: str, tab: Any, k: int, s: int, positions: int, report: Any) -> None:
    name = f"explorer {k + 1}, slider {s + 1}"
    handle = tab.locator(f'[data-funml-explorer="{k}"] .noUi-handle').nth(s)
    if positions < 2:
        return
    for step in ("one step", "to the other end"):
        previous = tab.evaluate(EXPLORERS_JS, k)
        at_end = previous["positions"][s] >= positions - 1
        key = ("ArrowLeft" if at_end else "ArrowRight") if step == "one step" else ("Home" if at_end else "End")
        handle.focus()
        handle.press(key)
        now = previous
        for _ in range(30):  # up to 3 s for the link to switch the Stack and the image to load
            tab.wait_for_timeout(100)
            now = tab.evaluate(EXPLORERS_JS, k)
            if now["positions"] != previous["positions"] and now["shown"] and now["shown"] != previous["shown"]:
                break
        if now["positions"][s] == previous["positions"][s]:
            report.add(page, f"{name}: the {key} key did not move the slider")
        elif now["shown"] is None:
            report.add(page, f"{name}: after {key}, {now['images']} frames are shown instead of one")
        elif now["shown"] == previous["shown"]:
            report.add(page, f"{name}: the slider moved ({key}) but the frame shown did not change")
        elif now["shown"] != now["expected"]:
            report.add(page, f"{name}: after {key}, the frame shown is not the saved frame for "
                             f"position {now['positions']}")
        if now["readouts"] == previous["readouts"] and now["positions"][s] != previous["positions"][s]:
            report.add(page, f"{name}: the value label did not change with the slider")


def check_accessibility(page: str, tab: Any, report: Any) -> dict[str, int]:
    """axe-core (vendored from npm, injected into the page, no network) on the page: every serious or
    critical violation is a problem. Returns {rule id: number of nodes} for all violations."""
    if not AXE_JS.is_file():
        report.add(page, f"accessibility audit not run: {AXE_JS} is missing (run `make assets`)")
        return {}
    tab.add_script_tag(content=AXE_JS.read_text(encoding="utf-8"))
    # preload: false - axe would fetch the style sheets again and resolve their @imports against the
    # page instead of the sheet (a 404 for /basic.css); only css-orientation-lock needs them.
    result = tab.evaluate("async () => (await axe.run(document, {resultTypes: ['violations'], preload: false}))"
                          ".violations"
                          ".map(v => ({id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.length,"
                          " target: v.nodes[0] ? String(v.nodes[0].target) : ''}))")
    for v in result:
        if v["impact"] in BLOCKING_IMPACTS:
            report.add(page, f"accessibility ({v['impact']}): {v['id']}: {v['help']} - {v['nodes']} "
                             f"element(s), e.g. {v['target'][:100]}")
    return {v["id"]: v["nodes"] for v in result}


def check_figures(page: str, seen: dict, expected: int | None, source: Any, executed: Path, report: Any) -> None:
    """Every image loaded; a chapter page shows as many figures as its executed notebook has."""
    for img in seen["images"]:
        if not img["width"]:
            kind = "figure in a cell output" if img["output"] else "image"
            report.add(page, f"{kind} did not load: {img['src']}")
    shown = sum(1 for img in seen["images"] if img["output"] and img["width"])
    if source.is_notebook:
        if expected is None:
            report.add(page, f"no executed notebook for {source.docname} under {executed}; "
                             "cannot know how many figures it should show")
        elif shown != expected:
            report.add(page, f"shows {shown} loaded figures in cell outputs, the executed notebook has {expected}")
        if shown == 0:
            report.add(page, "a chapter page without a single figure")


def check_widgets(page: str, seen: dict, report: Any) -> None:
    """Widgets with saved state are rendered by the (vendored) widget manager."""
    if seen["widgetViews"]:
        if not seen["widgetState"]:
            report.add(page, f"{seen['widgetViews']} widgets but no saved widget state: they show nothing on the page")
        elif seen["widgetsRendered"] < seen["widgetViews"]:
            report.add(page, f"only {seen['widgetsRendered']} of {seen['widgetViews']} widgets rendered")


def check_furniture(page: str, seen: dict, colab: str | None, report: Any) -> None:
    """A chapter page has its Colab launch button; every page a title and a favicon."""
    if colab and not any(link.startswith(colab) for link in seen["links"]):
        report.add(page, f"no Colab launch button (a link starting {colab})")
    if not seen["title"].strip():
        report.add(page, "empty <title>")
    if not seen["favicon"]:
        report.add(page, "no favicon link")


def anchors_of(path: Path, cache: dict[Path, set[str]]) -> set[str]:
    """The id= and name= values of an HTML file (link targets for #fragments)."""
    if path not in cache:
        text = path.read_text(encoding="utf-8", errors="replace")
        cache[path] = set(re.findall(r'\s(?:id|name)="([^"]+)"', text))
    return cache[path]


def check_links(page: str, links: list[str], origin: str, html_dir: Path, report: Any,
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
