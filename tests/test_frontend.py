"""An explorer in a real Jupyter front end, in a real browser: a student's view, not a simulation.

A Jupyter server from this environment runs on 127.0.0.1 (JupyterLab 4 with ipywidgets 8 in .venv;
the classic Notebook 6 with ipywidgets 7's nbextension in .venv-oldest, see coursekit/oldest.py).
Debian's Chromium (never a downloaded browser), driven by Playwright, opens a small notebook made of
chapter 2's parameters cell and its KL explorer cell (the whole chapter trains five models: minutes
that prove nothing more about widgets), runs the cells with Shift+Enter, moves the slider with the
keyboard, and checks that the frame shown is the expected one before and after, and that no error
appears. Every wait is bounded.

It needs a browser and a few free seconds, so it runs only when asked: `make frontend` (and
`make oldest` for ipywidgets 7) set FUNML_FRONTEND=1.
"""
from __future__ import annotations

import hashlib
import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import nbformat
import pytest

ROOT = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
CHAPTER = ROOT / "book" / "02_sparse_autoencoders.ipynb"
SERVER_START_S = 90
EXPLORER_S = 180  # kernel start, imports, four matplotlib frames
TOKEN = "funml-frontend-test"

pytestmark = pytest.mark.skipif(os.environ.get("FUNML_FRONTEND") != "1",
                                reason="a browser test: run it with `make frontend` (FUNML_FRONTEND=1)")


def front_end() -> str:
    """'classic' (Notebook 6: ipywidgets 7's front end) or 'lab' (JupyterLab 4), whichever is here."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        if int(version("notebook").split(".")[0]) < 7:
            return "classic"
    except PackageNotFoundError:
        pass
    try:
        version("jupyterlab")
        return "lab"
    except PackageNotFoundError:
        pytest.fail("no Jupyter front end installed: pip install -e '.[frontend]' (or '.[classic]')")


def explorer_notebook(path: Path) -> None:
    """Chapter 2's parameters cell and its KL explorer cell, as the student has them."""
    chapter = nbformat.read(CHAPTER, as_version=4)
    code = [c for c in chapter.cells if c.cell_type == "code"]
    params = next(c for c in code if "parameters" in c.metadata.get("tags", []))
    explorer = next(c for c in code if "kl_explorer(" in c.source)
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(params.source),
                                         nbformat.v4.new_code_cell(explorer.source)])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, path)


def expected_frames() -> tuple[dict[int, str], int]:
    """SHA-256 of every frame the explorer will show (same library, same versions: same bytes), and
    the index the slider starts at."""
    from funml_lib.widgets import kl_explorer

    chapter = nbformat.read(CHAPTER, as_version=4)
    params = next(c for c in chapter.cells if "parameters" in c.metadata.get("tags", []))
    scope: dict = {}
    exec(params.source, scope)
    ex = kl_explorer(rho=scope["rho"])
    return {k[0]: hashlib.sha256(png).hexdigest() for k, (png, _) in ex.frames.items()}, ex.grid[0].index


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture()
def server(tmp_path):
    """A Jupyter server of this environment's front end on 127.0.0.1, its config kept in tmp_path."""
    kind, port = front_end(), free_port()
    explorer_notebook(tmp_path / "explorer.ipynb")
    env = {k: v for k, v in os.environ.items() if k != "FUNML_STATIC"}  # a student's notebook: live
    env.update(JUPYTER_CONFIG_DIR=str(tmp_path / "config"), JUPYTER_RUNTIME_DIR=str(tmp_path / "runtime"),
               IPYTHONDIR=str(tmp_path / "ipython"), OMP_NUM_THREADS="1", CI="1",
               PYTHONPATH=os.pathsep.join([str(ROOT), env.get("PYTHONPATH", "")]))
    if kind == "classic":
        cmd = [sys.executable, "-m", "notebook", f"--NotebookApp.token={TOKEN}",
               f"--notebook-dir={tmp_path}"]
    else:
        cmd = [sys.executable, "-m", "jupyterlab", f"--ServerApp.token={TOKEN}",
               f"--ServerApp.root_dir={tmp_path}", "--LabApp.news_url=", "--LabApp.check_for_updates_class="
               "jupyterlab.NeverCheckForUpdate"]
    cmd += ["--no-browser", "--ip=127.0.0.1", f"--port={port}", "--port-retries=0"]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # CI containers run as root; the server refuses that
        cmd.append("--allow-root")
    log = open(tmp_path / "server.log", "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=tmp_path)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + SERVER_START_S
        while True:
            try:
                urllib.request.urlopen(f"{base}/api/status?token={TOKEN}", timeout=5).read()
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"the {kind} server did not start: "
                                f"{(tmp_path / 'server.log').read_text(errors='replace')[-2000:]}")
                time.sleep(0.5)
        path = "notebooks/explorer.ipynb" if kind == "classic" else "lab/tree/explorer.ipynb"
        yield kind, f"{base}/{path}?token={TOKEN}", tmp_path / "server.log"
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        log.close()


SHOWN_FRAME = """async (box) => {
    const visible = [...box.querySelectorAll('img')].filter(i => i.offsetParent !== null && i.src);
    if (visible.length !== 1) return 'images shown: ' + visible.length;
    const bytes = await (await fetch(visible[0].src)).arrayBuffer();
    const digest = await crypto.subtle.digest('SHA-256', bytes);
    return [...new Uint8Array(digest)].map(b => b.toString(16).padStart(2, '0')).join('');
}"""
PROBLEMS = ("Traceback", "Error displaying widget", "Sliders are not shown here", "Error:",
            "Failed to load model class")


def test_explorer_slider_moves_the_frame_in_a_real_front_end(server):
    from playwright.sync_api import sync_playwright

    import ipywidgets

    if not Path(CHROMIUM).is_file():
        pytest.fail(f"{CHROMIUM} is missing: run `make chromium`")
    kind, url, log = server
    frames, start = expected_frames()
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS, timeout=60_000)
        try:
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            page.set_default_timeout(60_000)
            page.on("pageerror", lambda err: errors.append(str(err)))
            page.goto(url, wait_until="domcontentloaded")
            cell = ".jp-Notebook .jp-Cell" if kind == "lab" else "#notebook .cell"
            # keys pressed before the kernel is connected are lost: wait for the idle kernel first
            if kind == "lab":
                page.wait_for_selector(".jp-StatusBar-Widget :text-matches('Python 3.*\\| Idle')",
                                       state="attached", timeout=SERVER_START_S * 1000)
            else:
                page.wait_for_function("() => window.Jupyter && Jupyter.notebook && Jupyter.notebook.kernel"
                                       " && Jupyter.notebook.kernel.is_connected()",
                                       timeout=SERVER_START_S * 1000)
            editor = ".jp-Cell-inputArea .cm-content" if kind == "lab" else ".input_area .CodeMirror"
            page.locator(cell).first.locator(editor).first.click()
            for _ in range(2):  # run the parameters cell, then the explorer cell
                page.keyboard.press("Shift+Enter")
            box = page.locator(".funml-explorer").first
            try:
                box.wait_for(state="visible", timeout=EXPLORER_S * 1000)
            except Exception:  # say what the student would see instead
                page.screenshot(path=str(log.with_name("no-explorer.png")))
                pytest.fail(f"{kind}: no explorer after {EXPLORER_S} s; the notebook shows:\n"
                            + "\n".join(page.locator(cell).all_inner_texts())[-3000:]
                            + f"\nserver log:\n{log.read_text(errors='replace')[-1500:]}")
            handle = box.locator(".noUi-handle, .ui-slider-handle").first
            handle.wait_for(state="visible")
            before = box.evaluate(SHOWN_FRAME)
            assert before == frames[start], f"{kind}: the first frame shown is not frame {start}: {before}"
            handle.focus()
            page.keyboard.press("ArrowRight")
            deadline = time.monotonic() + 30
            after = before
            while after == before and time.monotonic() < deadline:  # ipywidgets 7: a kernel round trip
                page.wait_for_timeout(200)
                after = box.evaluate(SHOWN_FRAME)
            assert after == frames[start + 1], (
                f"{kind} with ipywidgets {ipywidgets.__version__}: after ArrowRight the frame shown is "
                f"{after!r}, expected frame {start + 1}")
            text = page.locator(cell).all_inner_texts()
        finally:
            browser.close()
    seen = "\n".join(text)
    assert not [p for p in PROBLEMS if p in seen], f"{kind}: an error appeared in the notebook:\n{seen[-3000:]}"
    assert not errors, f"{kind}: JavaScript errors in the page: {errors}"
