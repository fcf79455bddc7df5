"""How fast the live views (issue 24) answer a reader, against a frame explorer on the same page.

    .venv/bin/python benchmarks/live_latency.py [_build/html] [--n 20] [--pages book/03_....html]
    make bench-live                     # the same, on the built book (run `make book` first)

Opens each built chapter page that has live views (div.funml-live) in headless Chromium, offline as
the site check does (coursekit.site_browser: served on 127.0.0.1, every other host blocked), but with
the page's real clock. On every live view it performs N interactions of each kind it offers:
  draw   one pointer move while drawing on the pad (the stroke zigzags over it, button down);
  digit  ArrowDown / ArrowUp on the digit picker (.funml-live-digits);
  noise  ArrowRight / ArrowLeft on the noise slider (.funml-live-noise), where there is one;
  plane  one pointer move while dragging on the latent plane, and an arrow key on it (latent view).
Latency of one interaction: from the input event's timeStamp to the first animation frame at which
the view's state() has changed (what the reader sees on the next paint), measured in the page with
performance.now(). It prints the median and the maximum per view and kind, the median's ratio to the
50 ms budget, and the view's own lastUpdateMs (its recompute + redraw alone). Baseline, same run, same
page: N arrow-key presses on the page's first frame explorer slider, from the key's timeStamp to the
first animation frame that shows another frame (ratio live/explorer). Exit status 1 when no page has a
live view. Timings depend on the machine: compare the ratios, and say which machine gave them.
"""
from __future__ import annotations

import argparse
import re
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from coursekit.site_browser import CHROMIUM_ARGS, open_page, serve  # noqa: E402
from coursekit.site_checks import LIVE_JS  # noqa: E402

LIVE_VIEW = re.compile(r'class="funml-live[" ]')
BUDGET_MS = 50.0
TIMEOUT_MS = 3_000   # an interaction that changes nothing within this long counts as lost

# Arms a probe before one interaction: the first trusted input event's timeStamp is t0; t1 is
# performance.now() just after the first animation frame at which `look()` differs from before. `look` is
# the view's state() (a live view) or the frame image on screen (an explorer).
PROBE_JS = """([k, explorer, timeout]) => {
  const view = explorer ? null
    : window.funmlLive.find(v => v.root.dataset.funmlLiveIndex === String(k));
  // an explorer shows another frame when exactly one loaded image is visible and it is another one
  // (not while the Stacks swap, with none or two on screen)
  const frame = () => {
    const shown = [...document.querySelectorAll('.funml-explorer')[k].querySelectorAll('img')]
      .filter(i => i.getBoundingClientRect().width > 0);
    return shown.length === 1 && shown[0].complete && shown[0].naturalWidth > 0 ? shown[0].src : null;
  };
  const look = explorer ? frame
    : () => JSON.stringify(view.state(), (key, a) => ArrayBuffer.isView(a) ? Array.from(a) : a);
  const before = look(), probe = {t0: null};
  const types = ['pointerdown', 'pointermove', 'keydown'];
  const onInput = e => { if (e.isTrusted && probe.t0 === null) probe.t0 = e.timeStamp; };
  types.forEach(t => window.addEventListener(t, onInput, true));
  // A look in a task posted from an animation frame callback runs after that frame's other
  // callbacks (a runtime that redraws in requestAnimationFrame) and after its rendering: a change
  // seen there is on the frame just painted.
  const channel = new MessageChannel();
  window.__funmlProbe = new Promise(resolve => {
    const started = performance.now();
    const done = value => {
      types.forEach(t => window.removeEventListener(t, onInput, true));
      channel.port1.close();
      resolve(value);
    };
    channel.port1.onmessage = () => {
      const now = performance.now(), seen = look();
      if (probe.t0 !== null && seen !== null && seen !== before) {
        done([now - probe.t0, view ? Number(view.lastUpdateMs) : null]);
      } else if (now - started > timeout) done(null);
      else requestAnimationFrame(() => channel.port2.postMessage(0));
    };
    requestAnimationFrame(() => channel.port2.postMessage(0));
  });
}"""


class Blocked(list):
    """Collects what the offline route blocked (the site check's Report has the same .add)."""
    def add(self, page: str, message: str) -> None:
        self.append(f"{page}: {message}")


def measure(tab, k: int, explorer: bool, act) -> list | None:
    """[ms from the input event to the frame that shows its effect, the view's lastUpdateMs] or None."""
    tab.evaluate(PROBE_JS, [k, explorer, TIMEOUT_MS])
    act()
    return tab.evaluate("() => window.__funmlProbe")


def box_of(tab, selector: str) -> dict:
    target = tab.locator(selector).first
    # centred, so that the theme's sticky header at the top never takes the pointer
    target.evaluate("e => e.scrollIntoView({block: 'center', inline: 'center'})")
    return target.bounding_box()


def zigzag(n: int) -> list[tuple[float, float]]:
    """n points across a pad (fractions of its size): rows of a zigzag, so every move draws anew."""
    return [(0.15 + 0.7 * ((i % 8) / 7 if (i // 8) % 2 == 0 else 1 - (i % 8) / 7),
             0.15 + 0.7 * ((i // 8) % 6) / 5) for i in range(n)]


def drag_moves(tab, k: int, selector: str, n: int) -> list[float | None]:
    box = box_of(tab, f'[data-funml-live-index="{k}"] {selector}')
    at = [(box["x"] + fx * box["width"], box["y"] + fy * box["height"]) for fx, fy in zigzag(n + 1)]
    tab.mouse.move(*at[0])
    tab.mouse.down()
    times = [measure(tab, k, False, lambda x=x, y=y: tab.mouse.move(x, y)) for x, y in at[1:]]
    tab.mouse.up()
    return times


def key_presses(tab, k: int, selector: str, keys: tuple[str, str], n: int, explorer: bool = False) -> list:
    """n presses, forward until nothing changes (the end of a list or slider), then back."""
    target = tab.locator(selector).first
    target.scroll_into_view_if_needed()
    times, key = [], keys[0]
    for _ in range(n):
        target.focus()
        ms = measure(tab, k, explorer, lambda: tab.keyboard.press(key))
        if ms is None:   # at an end: turn round and try again
            key = keys[1] if key == keys[0] else keys[0]
            ms = measure(tab, k, explorer, lambda: tab.keyboard.press(key))
        times.append(ms)
    return times


def summary(name: str, results: list[list | None]) -> float | None:
    """Prints one line for one kind of interaction; returns its median latency."""
    done = [r[0] for r in results if r is not None]
    last = [r[1] for r in results if r is not None and r[1] is not None and r[1] == r[1]]
    lost = len(results) - len(done)
    if not done:
        print(f"  {name:<34} no interaction changed what is shown ({lost} tried)")
        return None
    median = statistics.median(done)
    own = f"  own lastUpdateMs median {statistics.median(last):5.1f}" if last else ""
    print(f"  {name:<34} median {median:6.1f} ms  max {max(done):6.1f} ms  "
          f"median/50 ms {median / BUDGET_MS:5.2f}{own}" + (f"  ({lost} lost)" if lost else ""))
    return median


def bench_page(browser, origin: str, name: str, n: int) -> bool:
    blocked = Blocked()
    errors: list[str] = []
    context, tab = open_page(browser, f"{origin}/{name}", name, blocked, errors, fake_clock=False)
    try:
        found = tab.evaluate(LIVE_JS, {"op": "find", "readyMs": 15_000})
        views = [v for v in found["views"] if v["registered"] and v.get("ready") == "ok"]
        print(f"{name}: {len(found['views'])} live views ({len(views)} ready), "
              f"{found['domBytes'] / 1e3:.0f} kB of weights and code")
        explorers = tab.locator(".funml-explorer .noUi-handle").count()
        baseline = None
        if explorers:
            baseline = summary("explorer 1, slider 1 (frame swap)",
                               key_presses(tab, 0, ".funml-explorer .noUi-handle", ("ArrowRight", "ArrowLeft"),
                                           n, explorer=True))
        for k, view in enumerate(found["views"]):
            if not (view["registered"] and view.get("ready") == "ok"):
                continue
            root = f'[data-funml-live-index="{k}"]'
            kinds = {}
            if view["pad"]:
                kinds["draw"] = lambda: drag_moves(tab, k, ".funml-live-pad", n)
            if view["digits"]:
                kinds["digit"] = lambda: key_presses(tab, k, f"{root} .funml-live-digits",
                                                     ("ArrowDown", "ArrowUp"), n)
            if tab.locator(f"{root} .funml-live-noise").count():
                kinds["noise"] = lambda: key_presses(tab, k, f"{root} .funml-live-noise",
                                                     ("ArrowRight", "ArrowLeft"), n)
            if view["plane"]:
                kinds["plane drag"] = lambda: drag_moves(tab, k, ".funml-live-plane", n)
                kinds["plane key"] = lambda: key_presses(tab, k, f"{root} .funml-live-plane",
                                                         ("ArrowRight", "ArrowLeft"), n)
            for what, run in kinds.items():
                median = summary(f"view {k + 1} ({view['kind']}): {what}", run())
                if median is not None and baseline:
                    print(f"  {'':<34} ratio live/explorer {median / baseline:5.2f}")
        notes = list(dict.fromkeys(blocked + errors))
        for problem in notes[:5]:
            print(f"  note: {problem}")
        if len(notes) > 5:
            print(f"  note: {len(notes) - 5} more errors on the page (coursekit.check_site lists them)")
        return bool(views)
    finally:
        context.close()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("html_dir", nargs="?", default=ROOT / "_build" / "html", type=Path)
    parser.add_argument("--n", type=int, default=20, help="interactions of each kind per view (default 20)")
    parser.add_argument("--pages", nargs="*", default=None,
                        help="pages relative to html_dir (default: every book/*.html with a live view)")
    parser.add_argument("--chromium", default="/usr/bin/chromium")
    args = parser.parse_args(argv)
    if not 1 <= args.n <= 1000:
        parser.error(f"--n must be an integer in [1, 1000], got {args.n}")
    html_dir = args.html_dir.resolve()
    pages = args.pages or sorted(str(p.relative_to(html_dir)) for p in html_dir.glob("book/*.html")
                                 if LIVE_VIEW.search(p.read_text(encoding="utf-8", errors="replace")))
    if not pages:
        print(f"live latency: no page with a live view under {html_dir} (run `make book` first)", file=sys.stderr)
        return 1

    from playwright.sync_api import sync_playwright

    server, origin = serve(html_dir)
    any_view = False
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, args=CHROMIUM_ARGS)
            print(f"live latency, {args.n} interactions of each kind, input event to the first frame "
                  f"that shows the change (budget {BUDGET_MS:.0f} ms)")
            for name in pages:
                any_view |= bench_page(browser, origin, name, args.n)
            browser.close()
    finally:
        server.shutdown()
    return 0 if any_view else 1


if __name__ == "__main__":
    sys.exit(main())
