"""Browser plumbing for coursekit/check_site.py: serve the built site on 127.0.0.1 and open pages
in headless Chromium with every request off the machine blocked and every error collected."""
from __future__ import annotations

import functools
import http.server
import threading
from pathlib import Path
from urllib.parse import urlsplit

CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PAGE_TIMEOUT_MS = 30_000


class QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - http.server's name
        pass


def serve(directory: Path) -> tuple[http.server.ThreadingHTTPServer, str]:
    """Serve `directory` on a free port of 127.0.0.1 in a daemon thread."""
    handler = functools.partial(QuietHandler, directory=str(directory))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server, f"http://127.0.0.1:{server.server_address[1]}"


def open_page(browser, url: str, name: str, report: Report, errors: list[str]):
    """A fresh offline browser context (1280 x 900) with `url` loaded; errors collects console errors."""
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
    base = "/".join(origin)
    tab.on("console", lambda m: errors.append(f"console {m.type}: {m.text[:300]}") if m.type == "error" else None)
    tab.on("pageerror", lambda e: errors.append(f"JavaScript error: {str(e)[:300]}"))
    tab.on("response", lambda r: errors.append(
        f"HTTP {r.status} for {r.url.replace(base, '')} (asked by "
        f"{(r.request.headers.get('referer') or 'the page').replace(base, '')})") if r.status >= 400 else None)
    tab.on("requestfailed", lambda r: errors.append(f"request failed: {r.url.replace(base, '')} "
                                                    f"({r.failure})")
           if urlsplit(r.url).hostname == "127.0.0.1" else None)
    tab.goto(url, wait_until="load", timeout=PAGE_TIMEOUT_MS)
    return context, tab


def screenshot(tab, path: Path) -> None:
    try:
        tab.screenshot(path=str(path), full_page=True, timeout=PAGE_TIMEOUT_MS)
    except Exception:  # a very long page can exceed Chromium's texture limit: keep the top
        tab.screenshot(path=str(path), timeout=PAGE_TIMEOUT_MS)
