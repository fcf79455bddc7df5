"""The sandbox really isolates: each test runs student-like code that tries to get out.

Harnesses here do not import torch, so one run costs a fraction of a second.
"""
from __future__ import annotations

import os
import socket
import threading
from pathlib import Path

import pytest

from coursekit.grading import sandbox
from coursekit.grading.sandbox import PROJECT_ROOT, Limits, run

# the harness: run the code, hand back the variable `result`
H = '''
def main(code, payload):
    scope = {"payload": payload}
    exec(code, scope)
    return scope.get("result")
'''
FAST = Limits(wall_s=20, cpu_s=10, memory_mb=512, processes=32)

isolated = pytest.mark.skipif(sandbox.isolation_mode() == "subprocess",
                              reason="no Linux namespaces here: the sandbox's weak fallback does not isolate files")


def attempt(code: str, payload=None, **kw):
    return run(code, H, payload or {}, limits=kw.pop("limits", FAST), **kw)


def test_limits_are_checked():
    with pytest.raises(ValueError, match="Limits.wall_s must be a positive number, got 0"):
        Limits(wall_s=0)
    with pytest.raises(TypeError, match="limits must be a coursekit.grading.sandbox.Limits"):
        run("", H, {}, limits={"wall_s": 1})


def test_plain_values_come_back_and_output_is_separate():
    r = attempt("import sys\nprint('to stdout')\nprint('to stderr', file=sys.stderr)\n"
                "result = [1, 2.5, 'x', payload['n'] * 2]", {"n": 21})
    assert r.ok and r.value == [1, 2.5, "x", 42]
    assert r.stdout == "to stdout\n" and r.stderr == "to stderr\n"


def test_fake_verdict_on_stdout_is_just_output():
    r = attempt("import json\nprint(json.dumps({'ok': True, 'value': 'full points'}))\nresult = 'real'")
    assert r.ok and r.value == "real" and "full points" in r.stdout


@isolated
def test_library_and_course_tooling_not_importable():
    r = attempt("import importlib.util as u\n"
                "result = [u.find_spec(m) is None for m in ('funml_lib', 'coursekit', 'torch')]")
    assert r.ok and r.value == [True, True, False]  # torch (site-packages) stays importable


@isolated
def test_project_course_and_home_folders_are_invisible(tmp_path):
    course = tmp_path / "course"
    (course / "source").mkdir(parents=True)
    (course / "source" / "answers.txt").write_text("the reference")
    (course / "gradebook.db").write_text("grades")
    paths = [str(PROJECT_ROOT / "funml_lib" / "losses.py"), str(course / "source" / "answers.txt"),
             str(course / "gradebook.db"), "/root/.bashrc"]
    code = ("import os\nresult = []\nfor p in payload['paths']:\n"
            "    try:\n        open(p).read(); result.append('read')\n"
            "    except OSError as e:\n        result.append(type(e).__name__)\n"
            "result.append(sorted(os.listdir(payload['root'])))")
    r = attempt(code, {"paths": paths, "root": str(PROJECT_ROOT)}, hide=[course])
    assert r.ok, r.reason
    assert r.value[:4] == ["FileNotFoundError"] * 4
    assert "funml_lib" not in r.value[4] and "book" not in r.value[4]


@isolated
def test_writes_outside_its_temp_folder_fail(tmp_path):
    course = tmp_path / "course"
    course.mkdir()
    targets = [str(course / "gradebook.db"), str(PROJECT_ROOT / "planted.txt"), "/etc/planted.txt",
               "/usr/planted.txt"]
    code = ("import os\nresult = []\nfor p in payload['targets']:\n"
            "    try:\n        open(p, 'w').write('x'); result.append('wrote')\n"
            "    except OSError as e:\n        result.append('refused')\n"
            "open('mine.txt', 'w').write('ok')\nresult.append(open(os.path.abspath('mine.txt')).read())")
    r = attempt(code, {"targets": targets}, hide=[course])
    assert r.ok, r.reason
    assert r.value[-1] == "ok"  # its own temporary folder is writable
    for target in targets:  # whatever the sandbox saw, nothing reached the real files
        assert not os.path.exists(target), target


@isolated
def test_no_network_even_to_a_local_server():
    server = socket.socket()
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    port = server.getsockname()[1]
    accepted = []
    server.settimeout(5)

    def accept():
        try:
            accepted.append(server.accept())
        except OSError:
            pass
    thread = threading.Thread(target=accept)
    thread.start()
    code = ("import socket\ns = socket.socket()\ns.settimeout(3)\n"
            "try:\n    s.connect(('127.0.0.1', payload['port'])); result = 'connected'\n"
            "except OSError as e:\n    result = type(e).__name__")
    r = attempt(code, {"port": port})
    server.close()
    thread.join()
    assert r.ok and r.value != "connected" and accepted == []


def test_environment_reveals_no_grading_run(monkeypatch):
    monkeypatch.setenv("FUNML_GRADING", "1")
    monkeypatch.setenv("COURSE_SECRET", "hunter2")
    r = attempt("import os\nresult = dict(os.environ)")
    assert r.ok
    assert not any(k.startswith("FUNML") for k in r.value) and "COURSE_SECRET" not in r.value
    assert "hunter2" not in repr(r.value) and r.value["OMP_NUM_THREADS"] == "1"


def _processes_with(marker: str) -> list[int]:
    """Host processes whose command line contains `marker` (a unique sleep argument)."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and marker in open(f"/proc/{entry}/cmdline").read():
                found.append(int(entry))
        except OSError:
            pass
    return found


@isolated
def test_detached_double_forked_process_does_not_survive():
    marker = "1000.%d" % os.getpid()  # a unique argument of the detached `sleep`
    code = ("import os\nif os.fork() == 0:\n    os.setsid()\n    if os.fork() == 0:\n"
            "        os.execv('/bin/sleep', ['sleep', payload['marker']])\n    os._exit(0)\n"
            "import time\ntime.sleep(0.5)\nresult = 'parent done'")
    r = attempt(code, {"marker": marker})
    assert r.ok and r.value == "parent done"
    assert _processes_with(marker) == []  # the PID namespace took every descendant with it


def test_memory_hog_is_stopped():
    r = attempt("blocks = []\nwhile True:\n    blocks.append(bytearray(100 << 20))",
                limits=Limits(wall_s=20, cpu_s=10, memory_mb=400))
    assert not r.ok and "MemoryError" in r.reason


def test_infinite_loop_is_stopped_by_the_cpu_limit():
    r = attempt("while True:\n    pass", limits=Limits(wall_s=30, cpu_s=1, memory_mb=512))
    assert not r.ok and r.reason == "stopped after the CPU limit of 1 s"


def test_sleeping_forever_is_stopped_by_the_wall_clock():
    r = attempt("import time\ntime.sleep(1000)", limits=Limits(wall_s=2, cpu_s=10, memory_mb=512))
    assert not r.ok and r.reason == "stopped after the wall-clock limit of 2 s"


@isolated
def test_fork_bomb_is_bounded():
    marker = "1001.%d" % os.getpid()
    code = ("import os\nn = 0\ntry:\n    while True:\n        if os.fork() == 0:\n"
            "            os.execv('/bin/sleep', ['sleep', payload['marker']])\n        n += 1\n"
            "except OSError:\n    pass\nresult = n")
    r = attempt(code, {"marker": marker}, limits=Limits(wall_s=20, cpu_s=10, memory_mb=512, processes=16))
    assert r.ok and 0 < r.value < 16
    assert _processes_with(marker) == []


def test_malformed_reply_is_a_failure_with_a_reason():
    r = run("", "def main(code, payload):\n    return {1, 2}", {}, limits=FAST)
    assert not r.ok and r.reason == ("the grading harness failed: reply not JSON: Object of type set is "
                                     "not JSON serializable")
    r = run("", "import os\ndef main(code, payload):\n    os._exit(3)", {}, limits=FAST)
    assert not r.ok and r.reason == "the process ended without an answer (exit status 3)"
    r = run("", "def main(code, payload):\n    return 'x' * 5000", {},
            limits=Limits(wall_s=20, cpu_s=10, memory_mb=512, result_bytes=1000))
    assert not r.ok and r.reason == "the reply was larger than 1000 bytes"


def _wait_for(condition, seconds: float = 20.0) -> bool:
    import time

    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.05)
    return False


@isolated
def test_killing_the_grader_kills_the_sandbox(tmp_path):
    """A batch that kills a job (its process group) must not leave the job's sandbox running."""
    import subprocess
    import sys

    marker = "1002.%d" % os.getpid()
    script = tmp_path / "grader.py"
    script.write_text("from coursekit.grading.sandbox import run, Limits\n"
                      "run(\"import os\\nos.execv('/bin/sleep', ['sleep', %r])\", "
                      "'def main(code, payload):\\n    exec(code, {})\\n', {}, limits=Limits(wall_s=300))\n"
                      % marker)
    grader = subprocess.Popen([sys.executable, str(script)], cwd=PROJECT_ROOT,
                              env={**os.environ, "PYTHONPATH": str(PROJECT_ROOT)})
    try:
        assert _wait_for(lambda: _processes_with(marker) != [])
    finally:
        grader.kill()
        grader.wait()
    assert _wait_for(lambda: _processes_with(marker) == [], 10.0)


@isolated
def test_world_writable_folders_and_shared_memory_do_not_outlive_the_run():
    """Review attack: /run/lock (mode 1777, not masked) kept a file after the run, and a SysV
    shared-memory segment (no IPC namespace) kept host memory and could pass data to another
    student's sandbox. Every mount is read-only now, and the IPC namespace dies with the run."""
    import shutil
    import tempfile

    if not os.access("/run/lock", os.W_OK):  # /tmp and the project are masked: need a visible folder
        pytest.skip("no writable /run/lock here")
    shared = Path(tempfile.mkdtemp(dir="/run/lock"))
    shared.chmod(0o1777)  # like /run/lock itself or a shared data disk
    key = 0x5EED0000 + os.getpid() % 0xFFFF
    code = ("import ctypes\nlibc = ctypes.CDLL(None)\nresult = []\n"
            "try:\n    open(payload['file'], 'w').write('x'); result.append('wrote')\n"
            "except OSError:\n    result.append('refused')\n"
            "result.append(libc.shmget(payload['key'], 1 << 20, 0o1666) >= 0)")
    try:
        r = attempt(code, {"file": str(shared / "planted.txt"), "key": key})
        assert r.ok and r.value == ["refused", True], (r.reason, r.value)  # the segment is its own
        assert not (shared / "planted.txt").exists()
    finally:
        shutil.rmtree(shared)
    import ctypes

    assert ctypes.CDLL(None).shmget(key, 0, 0) == -1  # no segment with that key on the host
