"""Browser plumbing for coursekit/check_site.py: serve the built site on 127.0.0.1 and open pages
in headless Chromium with every request off the machine blocked and every error collected."""
from __future__ import annotations

import functools
import http.server
import threading
import time
from pathlib import Path
from urllib.parse import urlsplit

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 # no host but 127.0.0.1 resolves, whatever asks (a WebSocket, a prefetch): nothing
                 # leaves the machine even where a request escapes the route that reports it
                 "--host-resolver-rules=MAP * ~NOTFOUND , EXCLUDE 127.0.0.1"]
PAGE_TIMEOUT_MS = 30_000
# Late requests (issue 21): a page stays open at least WATCH_MS after it loaded, then its clock jumps
# ahead by FAST_FORWARD_MS three times, so a timer that injects a script after 5 s (or 5 min) fires
# while the route that reports requests is still watching.
WATCH_MS = 2_000
FAST_FORWARD_MS = 300_000


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's name
        pass


def serve(directory: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve `directory` on a free port of 127.0.0.1 in a daemon thread."""
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def open_page(browser, url: str, name: str, report: Report, errors: list[str], fake_clock: bool = True):
    """A fresh offline browser context (1280 x 900) with `url` loaded; errors collects console errors.
    fake_clock=False leaves the page's own clock (benchmarks: Playwright's clock rounds
    performance.now() to whole milliseconds and drives requestAnimationFrame itself)."""
    context = browser.new_context(viewport={"width": 1280, "height": 900}, service_workers="block")
    tab = context.new_page()
    origin = url.split("/", 3)[:3]

    def route(r) -> None:
        if urlsplit(r.request.url).hostname == "127.0.0.1":
            r.continue_()
        else:
            report.add(name, f"request to the network blocked: {r.request.url[:120]}")
            r.abort("blockedbyclient")

    context.route("**/*", route)
    # Playwright's fake clock, started at once and running at real speed, so that
    # watch_late_requests can later jump the page's timers ahead.
    if fake_clock:
        context.clock.install()
    context.funml_opened = time.monotonic()
    base = "/".join(origin)
    tab.on("console", lambda m: errors.append(f"console {m.type}: {m.text[:300]}") if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(f"JavaScript error: {str(e)[:300]}"))
    tab.on("websocket", lambda ws: report.add(name, f"WebSocket opened: {ws.url[:120]}")
           if urlsplit(ws.url).hostname != "127.0.0.1" else None)
    tab.on("response", lambda r: errors.append(
        f"HTTP {r.status} for {r.url.replace(base, '')} (asked by "
        f"{(r.request.headers.get('referer') or 'the page').replace(base, '')})") if r.status >= 400 else None)
    tab.on("requestfailed", lambda r: errors.append(f"request failed: {r.url.replace(base, '')} "
                                                    f"({r.failure})")
           if urlsplit(r.url).hostname == "127.0.0.1" else None)
    tab.goto(url, wait_until="load", timeout=PAGE_TIMEOUT_MS)
    return context, tab


def watch_late_requests(context, tab) -> None:
    """Keep the page open until WATCH_MS after it loaded, then run its timers FAST_FORWARD_MS ahead
    (three times, for a timer that sets another); a request they make is reported by the route."""
    left = WATCH_MS / 1000 - (time.monotonic() - getattr(context, "funml_opened", 0.0))
    if left > 0:
        tab.wait_for_timeout(left * 1000)
    for _ in range(3):
        tab.clock.fast_forward(FAST_FORWARD_MS)
        tab.wait_for_timeout(300)  # the requests the timers started reach the route


def screenshot(tab, path: Path) -> None:
    try:
        tab.screenshot(path=str(path), full_page=True, timeout=PAGE_TIMEOUT_MS)
    except Exception:  # a very long page can exceed Chromium's texture limit: keep the top
        tab.screenshot(path=str(path), timeout=PAGE_TIMEOUT_MS)
