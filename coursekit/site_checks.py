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
LIVE_JS = (HERE / "site_live.js").read_text(encoding="utf-8")
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
LIVE_BUDGET = 1_000_000      # bytes of live views' weights and code per page (issue 24)
LIVE_TOLERANCE = 2e-3        # the most a view may allow between its run() and torch (issue 24)
LIVE_READY_MS = 15_000       # a view whose ready takes longer is broken for a reader
LIVE_CHANGE_MS = 1_000       # an interaction whose effect takes longer is taken as no effect
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


def check_live(page: str, tab: Any, report: Any, expect: bool, ready_ms: int = LIVE_READY_MS) -> dict:
    """The live views of issue 24 (funml_lib/live.py builds them, funml_lib/live.js runs them and
    pushes each onto window.funmlLive; coursekit/site_live.js reads them): every div.funml-live
    registers and its `ready` resolves within ready_ms; run(model, input) gives every reference output within
    `tolerance` (<= 2e-3) and changes nothing on screen; drawing on the pad with pointer events, and
    ArrowDown on the digit picker, change state(); a latent view's plane reacts to a drag and to an
    arrow key; the fallback sentence is hidden while JavaScript runs; weights and code stay within
    LIVE_BUDGET per page, as the views count them (`bytes`) and as counted from the page's scripts.
    Returns {"views", "bytes", "domBytes", "lastUpdateMs" (the most over the interactions, or None),
    "maxDiff" (the largest |run - torch| over every reference output, or None)}: latency is reported,
    never a problem (benchmarks/live_latency.py measures it)."""
    found = tab.evaluate(LIVE_JS, {"op": "find", "readyMs": ready_ms})
    views = found["views"]
    if expect and not views:
        report.add(page, "no live views (.funml-live) on a page whose notebook calls a live_...() function")
    declared, latencies, diffs = 0, [], []
    for k, view in enumerate(views):
        name = f"live view {k + 1} ({view['kind']})"
        if not view["registered"]:
            report.add(page, f"{name} did not register on window.funmlLive")
            continue
        if isinstance(view["bytes"], (int, float)):
            declared += view["bytes"]
        else:
            report.add(page, f"{name}: bytes is not a number ({view['bytes']!r})")
        if view["fallbackVisible"]:
            report.add(page, f"{name}: its fallback sentence (.funml-live-fallback) is visible while JavaScript runs")
        if view["ready"] != "ok":
            why = {"timeout": f"ready did not resolve within {ready_ms / 1000:g} s",
                   "missing": "no ready Promise"}.get(view["ready"], f"ready was {view['ready']}")
            report.add(page, f"{name}: {why}")
            continue
        diffs += _check_references(page, name, view, report)
        latencies += _interact(page, name, k, view, tab, report)
    if found["domBytes"] > LIVE_BUDGET:
        report.add(page, f"live views: {found['domBytes'] / 1e6:.2f} MB of weights and code in the page's "
                         f"scripts, over the budget of {LIVE_BUDGET / 1e6:.1f} MB per page")
    if declared > LIVE_BUDGET:
        report.add(page, f"live views: {declared / 1e6:.2f} MB of weights and code (the views' bytes), over "
                         f"the budget of {LIVE_BUDGET / 1e6:.1f} MB per page")
    return {"views": len(views), "bytes": declared, "domBytes": found["domBytes"],
            "lastUpdateMs": max(latencies) if latencies else None,
            "maxDiff": max(diffs) if diffs else None}


def _check_references(page: str, name: str, view: dict, report: Any) -> list[float]:
    """Report every reference output of a view that torch's does not match; return the differences."""
    diffs = []
    tolerance = view["tolerance"]
    if not isinstance(tolerance, (int, float)) or not 0 <= tolerance <= LIVE_TOLERANCE:
        report.add(page, f"{name}: tolerance {tolerance!r} is not a number in [0, {LIVE_TOLERANCE:g}]")
        tolerance = LIVE_TOLERANCE
    if not view["references"]:
        report.add(page, f"{name}: no reference outputs: nothing ties the page to what torch computed")
    for j, ref in enumerate(view["references"]):
        what = f"{name}: run({ref['model']!r}, reference input {j + 1})"
        if "error" in ref:
            report.add(page, f"{what} failed: {ref['error']}")
        elif ref["diff"] is None:
            report.add(page, f"{what} returned {ref['length']} numbers, torch {ref['expected']}")
        elif ref["diff"] == "NaN":
            report.add(page, f"{what} returned NaN")
        else:
            diffs.append(float(ref["diff"]))
            if ref["diff"] > tolerance:
                report.add(page, f"{what} differs from torch by {ref['diff']:.3g} (max |run - output|), "
                                 f"over the tolerance {tolerance:g}")
    for model in view["quantization"] or {}:
        if not any(ref["model"] == model for ref in view["references"]):
            report.add(page, f"{name}: model {model!r} has no reference output")
    if view["runChangedState"]:
        report.add(page, f"{name}: run() changed state() (it must change nothing on screen)")
    if view["state"].startswith("error"):
        report.add(page, f"{name}: state() failed: {view['state'][7:]}")
    return diffs


def _interact(page: str, name: str, k: int, view: dict, tab: Any, report: Any) -> list[float]:
    """Draw on the pad, press ArrowDown on the digit picker, and for a latent view drag on and press
    ArrowRight on its plane; each must change state(). Returns lastUpdateMs after each that did."""
    root = f'[data-funml-live-index="{k}"]'
    latencies = []

    def changed(action: str, act: Any) -> None:
        before = tab.evaluate(LIVE_JS, {"op": "state", "k": k})["state"]
        act()
        for _ in range(LIVE_CHANGE_MS // 50):   # a runtime may redraw on the next animation frame
            now = tab.evaluate(LIVE_JS, {"op": "state", "k": k})
            if now["state"] != before:
                latencies.append(now["last"])
                return
            tab.wait_for_timeout(50)
        report.add(page, f"{name}: {action} did not change state()")

    def drag(selector: str, path: list[tuple[float, float]]) -> None:
        target = tab.locator(f"{root} {selector}").first
        # centred, so that the theme's sticky header at the top never takes the pointer
        target.evaluate("e => e.scrollIntoView({block: 'center', inline: 'center'})")
        box = target.bounding_box()
        at = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in path]
        tab.mouse.move(*at[0])
        tab.mouse.down()
        for x, y in at[1:]:
            tab.mouse.move(x, y, steps=6)
        tab.mouse.up()

    def press(what: str, key: str) -> Any:
        def act() -> None:
            if not tab.evaluate(LIVE_JS, {"op": "focus", "k": k, "what": what}):
                report.add(page, f"{name}: its {what} control cannot take the keyboard focus")
            tab.keyboard.press(key)
        return act

    if view["pad"]:
        changed("drawing on the pad (pointer down, move, up)",
                lambda: drag(".funml-live-pad", [(0.3, 0.2), (0.5, 0.8), (0.7, 0.25)]))
    else:
        report.add(page, f"{name}: no drawing pad (.funml-live-pad)")
    if view["digits"]:
        changed("ArrowDown on the digit picker (.funml-live-digits)", press("digits", "ArrowDown"))
    else:
        report.add(page, f"{name}: no keyboard digit picker (.funml-live-digits)")
    if view["kind"] == "latent":
        if view["plane"]:
            changed("dragging on the latent plane", lambda: drag(".funml-live-plane", [(0.5, 0.5), (0.8, 0.3)]))
            changed("ArrowRight on the latent plane", press("plane", "ArrowRight"))
        else:
            report.add(page, f"{name}: no latent plane (.funml-live-plane)")
    return [ms for ms in latencies if ms == ms]   # NaN: a view without lastUpdateMs
