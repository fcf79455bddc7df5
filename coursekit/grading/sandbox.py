"""The one place where student code runs: a fresh, isolated, limited process.

    result = run(answer_code, HARNESS, payload, limits=Limits(), hide=[course_dir])

`run` starts a new Python interpreter that reads a request on stdin, executes `harness` (grader code:
it must define `main(code, payload) -> plain JSON value`), and sends `main`'s return value back on a
private pipe. The harness runs the student's `code` itself. Nothing from that process is trusted
beyond the plain values it returns: the grader compares them with references it computes on its own.

Isolation, when the grader runs as root on Linux (a course server, CI) -- mode "namespaces":
- new mount, network, PID and IPC namespaces (`unshare`): no network at all (not even loopback), its own
  /proc, and when the interpreter (PID 1 there) exits or the wall-clock limit kills it, the kernel
  kills every process left in the namespace, detached or double-forked ones included;
- empty tmpfs over the project root, every folder in `hide` (the course folder: sources, gradebook,
  other submissions), /root, /home, /tmp, /var/tmp, /dev/shm; the Python installation and the
  virtual environment are bound back read-only; a private writable /tmp/work is cwd and HOME;
- the code runs as an unprivileged user (a fresh uid per run, so the process limit of one sandbox is
  not shared with another running at the same time) with no capabilities and no_new_privs, so it
  cannot undo the mounts;
- rlimits: CPU seconds, address space, file size, processes, open files; no core files;
- environment scrubbed to a minimum (no FUNML_*, nothing that says a grading run is going on);
- Python with -I -S: site-packages are added to sys.path by hand, without processing .pth files, so
  the editable funml_lib install and coursekit are not importable (allow_library=False).

Without root (an instructor's laptop) it tries an unprivileged user namespace (mode "userns": the
same, except that the code runs as the namespace's mapped user); where that is unavailable too it
falls back to mode "subprocess" and warns once: same rlimits, scrubbed environment, temporary cwd,
own session killed as a group, but NO protection of files the instructor can read, of the network,
or against a process that detaches itself (setsid + double fork). Grade a real class as root.

stdout and stderr of the student code are captured (size-limited) for display only and never
decide a verdict.
"""
from __future__ import annotations

import json
import os
import secrets
import shlex
import shutil
import signal
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Sequence

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ALWAYS_HIDDEN = ("/root", "/home", "/tmp", "/var/tmp", "/dev/shm", "/mnt", "/media", "/srv")
WORK = "/tmp/work"  # the sandbox's cwd and HOME (private tmpfs)


@dataclass(frozen=True)
class Limits:
    """Resource limits of one sandboxed run; every field must be positive.

    wall_s: wall-clock seconds before the whole process tree is killed;
    cpu_s: CPU seconds (RLIMIT_CPU); memory_mb: address space (RLIMIT_AS; `import torch` alone needs
    about 1.5 GB of it, most of it never touched); file_mb: largest file it may write;
    processes: processes and threads of the sandbox user; open_files: descriptors;
    output_bytes: stdout and stderr kept (each; the rest is dropped); result_bytes: largest reply.
    """

    wall_s: float = 60.0
    cpu_s: int = 60
    memory_mb: int = 4096
    file_mb: int = 64
    processes: int = 64
    open_files: int = 256
    output_bytes: int = 65536
    result_bytes: int = 8_000_000

    def __post_init__(self) -> None:
        for name, value in asdict(self).items():
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
                raise ValueError(f"Limits.{name} must be a positive number, got {value!r}")


@dataclass
class SandboxResult:
    """What came back: `value` (main's plain JSON value) when ok, else a one-line `reason`."""

    ok: bool
    value: Any = None
    reason: str = ""
    stdout: str = ""
    stderr: str = ""
    wall_s: float = 0.0
    cpu_s: float = 0.0
    mode: str = ""
    notes: list[str] = field(default_factory=list)


# The program the sandboxed interpreter runs (python -I -S -c BOOTSTRAP FD). It reads the request,
# sets the rlimits (soft = hard: the code cannot raise them again), extends sys.path without .pth
# files, runs the harness and writes one JSON reply on the private descriptor.
BOOTSTRAP = r"""
import json, os, resource, sys
_dumps, _write, _exit, _flush = json.dumps, os.write, os._exit, (sys.stdout.flush, sys.stderr.flush)
_fd = int(sys.argv[1])
_req = json.loads(sys.stdin.buffer.read().decode("utf-8"))
os.dup2(os.open(os.devnull, os.O_RDONLY), 0)
for _name, _value in _req["rlimits"].items():
    _res = getattr(resource, _name)
    _soft, _hard = resource.getrlimit(_res)
    _value = _value if _hard == resource.RLIM_INFINITY else min(_value, _hard)
    resource.setrlimit(_res, (_value, _value))
sys.path.extend(_req["site"])
_scope = {"__name__": "__harness__"}
try:
    exec(compile(_req["harness"], "<harness>", "exec"), _scope)
    _reply = {"ok": True, "value": _scope["main"](_req["code"], _req["payload"])}
except BaseException as _err:
    _reply = {"ok": False, "error": (type(_err).__name__ + ": " + str(_err))[:2000]}
try:
    _data = _dumps(_reply).encode("utf-8")
except Exception as _err:
    _data = _dumps({"ok": False, "error": "reply not JSON: " + str(_err)[:500]}).encode()
for _f in _flush:
    try:
        _f()
    except Exception:
        pass
_view = memoryview(_data)
while _view:
    _view = _view[_write(_fd, _view):]
_exit(0)
"""

_MODE: str | None = None


def _probe(cmd: list[str]) -> bool:
    try:
        return subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, timeout=20).returncode == 0
    except (OSError, subprocess.SubprocessError):
        return False


def isolation_mode() -> str:
    """'namespaces' (root), 'userns' (unprivileged user namespace) or 'subprocess' (weak fallback)."""
    global _MODE
    if _MODE is None:
        ns = ["--mount", "--net", "--pid", "--ipc", "--fork", "--kill-child", "--mount-proc"]
        if not sys.platform.startswith("linux") or not shutil.which("unshare"):
            _MODE = "subprocess"
        elif os.geteuid() == 0 and shutil.which("setpriv") and _probe(["unshare", *ns, "true"]):
            _MODE = "namespaces"
        elif _probe(["unshare", "--user", "--map-root-user", *ns, "true"]):
            _MODE = "userns"
        else:
            _MODE = "subprocess"
        if _MODE == "subprocess":
            warnings.warn("coursekit.grading.sandbox: no Linux namespaces here; student code runs in a "
                          "plain limited subprocess that can read your files and use the network. "
                          "Grade a class as root on Linux.", RuntimeWarning, stacklevel=2)
    return _MODE


def _under(path: str, parent: str) -> bool:
    return path == parent or path.startswith(parent.rstrip("/") + "/")


def _site_dirs() -> list[str]:
    """The grader's site-packages (venv and base), in the order site.py would add them."""
    dirs = []
    for scheme_path in (sysconfig.get_paths()["purelib"], sysconfig.get_paths()["platlib"]):
        if scheme_path not in dirs and os.path.isdir(scheme_path):
            dirs.append(scheme_path)
    return dirs


def _interpreter(allow_library: bool) -> list[str]:
    # allow_library: the venv's own python with site processing (the editable funml_lib install),
    # but -E -s: no PYTHON* variables, no user site. Otherwise the base interpreter, isolated.
    if allow_library:
        return [sys.executable, "-E", "-s"]
    return [os.path.realpath(sys.executable), "-I", "-S"]


STAGING_CANDIDATES = ("/mnt", "/media", "/srv", "/opt", "/boot")


def _staging_dir(keep: Sequence[str]) -> str:
    """An existing folder to mount the staging tmpfs on: not /tmp (a project, its venv or the
    Python installation may live there, as in a clone under /tmp) and holding no kept path."""
    for path in STAGING_CANDIDATES:
        if os.path.isdir(path) and not os.path.islink(path) and not any(_under(k, path) for k in keep):
            return path
    raise RuntimeError("coursekit.grading.sandbox: none of " + ", ".join(STAGING_CANDIDATES)
                       + " is a plain folder to stage the sandbox's mounts on")


def _setup_script(hide: Sequence[str], keep: Sequence[str], mask_in_keep: Sequence[str]) -> str:
    """Shell run as root inside the new namespaces, before the privileges are dropped.

    1. the kept folders (Python, the venv, funml_lib for the display run) are bound into a private
       staging tmpfs while they are still visible, wherever they live (/tmp, /root, the project);
    2. every hidden folder gets an empty tmpfs over it; /tmp gets the run's own writable tmpfs;
    3. kept folders that a mask covered are bound back, read-only, at their own paths;
    4. every other mount becomes read-only, and the staging tmpfs goes.
    """
    q = shlex.quote
    stage = _staging_dir(keep)
    lines = ["set -e", "mount --make-rprivate /",
             f"mount -t tmpfs -o size=1m,mode=700 stage {q(stage)}"]
    for i, path in enumerate(keep):
        lines += [f"mkdir -p {q(stage)}/keep/{i}", f"mount --rbind {q(path)} {q(stage)}/keep/{i}"]
    masked: list[str] = []
    for path in sorted(set(hide) | {"/tmp"}, key=len):
        if path == stage or any(_under(path, m) for m in masked) or not os.path.isdir(path):
            continue
        masked.append(path)
        if path == "/tmp":  # the run's only writable place: cwd and HOME
            lines.append("mount -t tmpfs -o size=512m,mode=1777 work /tmp")
        else:
            lines.append(f"mount -t tmpfs -o size=1m,mode=755 hidden {q(path)}")
    for i, path in enumerate(keep):
        if any(_under(path, m) for m in masked):
            lines += [f"mkdir -p {q(path)}", f"mount --rbind {q(stage)}/keep/{i} {q(path)}",
                      f"mount -o remount,bind,ro {q(path)}"]
    for path in mask_in_keep:  # an installed (non-editable) funml_lib or coursekit in site-packages
        lines.append(f"mount -t tmpfs -o size=1m,mode=755,ro hidden {q(path)} || true")
    lines += [f"umount -l {q(stage)}"]
    if stage in hide:
        lines.append(f"mount -t tmpfs -o size=1m,mode=755 hidden {q(stage)}")
    # every other mount read-only: a world-writable folder that is not masked (/run/lock,
    # /var/crash, a shared data disk) would keep files after the run and pass them between students
    lines.append("for mp in $(cut -d' ' -f5 /proc/self/mountinfo | sort -u); do "
                 "case \"$mp\" in /tmp) ;; *) mount -o remount,bind,ro \"$mp\" "
                 "2>/dev/null || true;; esac; done")
    lines += [f"mkdir -p {WORK}", f"chown \"$SANDBOX_UID:$SANDBOX_UID\" {WORK}", f"cd {WORK}"]
    return "\n".join(lines)


def _rlimits(limits: Limits, mode: str) -> dict[str, int]:
    nproc = limits.processes
    if mode == "subprocess" and os.geteuid() != 0:
        # RLIMIT_NPROC counts every process of the user: allow the ones already running
        nproc += _user_threads()
    return {"RLIMIT_CPU": int(limits.cpu_s) + 1, "RLIMIT_AS": int(limits.memory_mb) << 20,
            "RLIMIT_FSIZE": int(limits.file_mb) << 20, "RLIMIT_NPROC": nproc,
            "RLIMIT_NOFILE": int(limits.open_files), "RLIMIT_CORE": 0}


def _user_threads() -> int:
    uid, n = os.getuid(), 0
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else ():
        if entry.isdigit():
            try:
                if os.stat(f"/proc/{entry}").st_uid == uid:
                    n += len(os.listdir(f"/proc/{entry}/task"))
            except OSError:
                pass
    return n


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The sandbox's environment: a minimum that says nothing about grading, plus `extra`."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": WORK, "TMPDIR": WORK, "LANG": "C.UTF-8",
           "LC_ALL": "C.UTF-8", "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1",
           "OPENBLAS_NUM_THREADS": "1", "MPLBACKEND": "Agg", "PYTHONDONTWRITEBYTECODE": "1"}
    env.update(extra or {})
    return env


class _Reader(threading.Thread):
    """Reads a pipe to its end, keeping the first `cap` bytes (the rest is read and dropped)."""

    def __init__(self, fd: int, cap: int) -> None:
        super().__init__(daemon=True)
        self.fd, self.cap, self.data, self.overflow = fd, cap, bytearray(), False

    def run(self) -> None:
        try:
            while True:
                chunk = os.read(self.fd, 65536)
                if not chunk:
                    break
                room = self.cap - len(self.data)
                if len(chunk) > room:
                    self.overflow = True
                self.data += chunk[:max(room, 0)]
        except OSError:
            pass
        finally:
            os.close(self.fd)


def _text(reader: _Reader) -> str:
    text = reader.data.decode("utf-8", "replace")
    return text + ("\n[... output cut]" if reader.overflow else "")


def run(code: str, harness: str, payload: Any, *, limits: Limits, allow_library: bool = False,
        hide: Sequence[str | os.PathLike] = (), env: dict[str, str] | None = None) -> SandboxResult:
    """Run `harness` (defines `main(code, payload)`) with the student's `code` in a fresh sandbox.

    code: the student's source (a string; only the harness executes it); payload: plain JSON data
    for the harness (inputs generated by the grader); hide: further folders to make invisible (the
    course folder); env: extra environment variables (the display run's FUNML_GRADING=1);
    allow_library: make funml_lib importable (only for the display run, never for verdicts).
    Never raises for anything the student's code does: a crash, timeout, memory kill or malformed
    reply is a result with ok=False and a one-line reason.
    """
    if not isinstance(limits, Limits):
        raise TypeError(f"limits must be a coursekit.grading.sandbox.Limits, got {type(limits).__name__}")
    if not isinstance(code, str) or not isinstance(harness, str):
        raise TypeError("code and harness must be strings")
    mode = isolation_mode()
    uid = 3_000_000 + secrets.randbelow(1_000_000)  # a fresh unprivileged user for this run
    site = _site_dirs()
    request = json.dumps({"code": code, "harness": harness, "payload": payload, "site": site,
                          "rlimits": _rlimits(limits, mode)}).encode("utf-8")
    python = _interpreter(allow_library)
    read_fd, write_fd = os.pipe()
    cmd: list[str]
    work_dir = None
    hidden = [str(PROJECT_ROOT), *ALWAYS_HIDDEN, *(os.path.realpath(p) for p in hide)]
    if mode in ("namespaces", "userns"):
        keep = [os.path.realpath(sys.base_prefix), os.path.realpath(sys.prefix)]
        if allow_library:
            keep.append(str(PROJECT_ROOT / "funml_lib"))
            data = (env or {}).get("FUNML_DATA")
            if data and os.path.isdir(data):
                keep.append(os.path.realpath(data))
        keep = [k for i, k in enumerate(keep) if k not in keep[:i]]
        mask_in_keep = [] if allow_library else [
            os.path.join(d, pkg) for d in site for pkg in ("funml_lib", "coursekit")
            if os.path.isdir(os.path.join(d, pkg))]
        script = _setup_script(hidden, keep, mask_in_keep)
        inner = [*python, "-c", BOOTSTRAP, str(write_fd)]
        if mode == "namespaces":
            drop = ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups", "--no-new-privs",
                    "--inh-caps=-all", "--bounding-set=-all", "--"]
            script = script.replace("$SANDBOX_UID", str(uid))
            prefix = ["unshare", "--mount", "--net", "--pid", "--ipc", "--fork", "--kill-child",
                      "--mount-proc"]
        else:  # a nested user+mount namespace locks the mounts made above (they cannot be undone)
            drop = ["unshare", "--user", "--mount", "--", "setpriv", "--no-new-privs", "--"]
            script = script.replace("$SANDBOX_UID", "0")
            prefix = ["unshare", "--user", "--map-root-user", "--mount", "--net", "--pid", "--ipc",
                      "--fork", "--kill-child", "--mount-proc"]
        # not exec: the shell (root, PID 1 inside) keeps the parent-death signal that unshare gave it,
        # which a change of user would clear; when it dies, every process in the namespace dies
        script += "\n" + " ".join(shlex.quote(a) for a in [*drop, *inner])
        cmd = [*prefix, "/bin/sh", "-c", script]
        cwd = "/"
    else:
        work_dir = tempfile.mkdtemp(prefix="funml-sandbox-")
        cmd = [*python, "-c", BOOTSTRAP, str(write_fd)]
        cwd = work_dir
    run_env = clean_env(env)
    if work_dir:
        run_env.update(HOME=work_dir, TMPDIR=work_dir)
    start, cpu0 = time.monotonic(), os.times()
    try:
        proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                cwd=cwd, env=run_env, start_new_session=True,
                                pass_fds=(write_fd,), preexec_fn=_die_with_parent)
    except OSError as err:
        os.close(read_fd)
        os.close(write_fd)
        return SandboxResult(False, reason=f"could not start the sandbox: {err}", mode=mode)
    os.close(write_fd)
    readers = [_Reader(os.dup(proc.stdout.fileno()), limits.output_bytes),
               _Reader(os.dup(proc.stderr.fileno()), limits.output_bytes),
               _Reader(read_fd, limits.result_bytes + 1)]
    proc.stdout.close()
    proc.stderr.close()
    for reader in readers:
        reader.start()
    killed = ""
    init = _child_of(proc.pid) if mode != "subprocess" else None
    try:
        proc.stdin.write(request)
        proc.stdin.close()
    except OSError:
        pass  # it died before reading: reported below
    try:
        proc.wait(timeout=limits.wall_s)
    except subprocess.TimeoutExpired:
        killed = f"stopped after the wall-clock limit of {limits.wall_s:g} s"
    _kill_group(proc)
    proc.wait()
    _wait_gone(init)
    for reader in readers:  # in subprocess mode a detached child may hold a pipe: do not wait on it
        reader.join(timeout=2.0)
    wall = time.monotonic() - start
    cpu1 = os.times()
    cpu = (cpu1.children_user - cpu0.children_user) + (cpu1.children_system - cpu0.children_system)
    if work_dir:
        shutil.rmtree(work_dir, ignore_errors=True)
    out, err, res = readers
    result = SandboxResult(False, stdout=_text(out), stderr=_text(err), wall_s=round(wall, 3),
                           cpu_s=round(cpu, 3), mode=mode)
    # unshare reports a child killed by a signal as its own failure; those lines are not the student's
    result.stderr = "\n".join(line for line in result.stderr.split("\n") if not line.startswith("unshare: "))
    if not killed and cpu >= limits.cpu_s:
        killed = f"stopped after the CPU limit of {limits.cpu_s:g} s"
    result.reason, result.ok, result.value = _reply(res, killed, proc.returncode, result.stderr, limits)
    return result


def _die_with_parent() -> None:
    """In the child before exec: SIGKILL it when the grader dies (a batch that kills a job's process
    group does not reach this new session otherwise); the namespace then goes with it."""
    if sys.platform.startswith("linux"):
        import ctypes

        ctypes.CDLL(None).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG


def _child_of(pid: int) -> int | None:
    """The namespace's first process (unshare's only child), to wait for its end after a kill."""
    for _ in range(200):
        try:
            kids = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
        except OSError:
            return None
        if kids:
            return int(kids[0])
        time.sleep(0.005)
    return None


def _wait_gone(pid: int | None) -> None:
    # unshare dies first when killed; its child (PID 1 inside) ends only once every process in the
    # namespace has been killed and reaped: wait for that, so nothing of this run outlives `run`
    deadline = time.monotonic() + 10
    while pid is not None and os.path.exists(f"/proc/{pid}") and time.monotonic() < deadline:
        try:
            if Path(f"/proc/{pid}/stat").read_text().split(") ")[-1].startswith("Z"):
                break
        except OSError:
            break
        time.sleep(0.01)


def _kill_group(proc: subprocess.Popen) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _reply(res: _Reader, killed: str, returncode: int | None, stderr: str,
           limits: Limits) -> tuple[str, bool, Any]:
    """(reason, ok, value) from the reply pipe; anything malformed is a failure with a reason."""
    if killed:
        return killed, False, None
    if res.overflow or len(res.data) > limits.result_bytes:
        return f"the reply was larger than {limits.result_bytes} bytes", False, None
    if not res.data:
        return _death(returncode, stderr, limits), False, None
    try:
        reply = json.loads(res.data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        return f"malformed reply ({type(err).__name__})", False, None
    if not isinstance(reply, dict) or not isinstance(reply.get("ok"), bool):
        return "malformed reply (not an object with ok)", False, None
    if not reply["ok"]:
        error = " ".join(str(reply.get("error")).split())
        return f"the grading harness failed: {error[:300]}", False, None
    return "", True, reply.get("value")


def _death(returncode: int | None, stderr: str, limits: Limits) -> str:
    """Why the process ended without a reply, in one line."""
    if returncode is not None and returncode < 0:
        sig = -returncode
        if sig == signal.SIGXCPU or sig == signal.SIGKILL and "MemoryError" not in stderr:
            what = {signal.SIGXCPU: f"it used more than {limits.cpu_s} s of CPU",
                    signal.SIGKILL: "it was killed (memory or CPU limit)"}[sig]
        else:
            what = f"it was killed by signal {signal.Signals(sig).name}"
        return f"the process ended without an answer: {what}"
    last = [line for line in stderr.strip().splitlines() if line.strip()]
    if "MemoryError" in stderr:
        return f"the process ran out of memory (limit {limits.memory_mb} MB)"
    tail = f": {' '.join(last[-1].split())[:200]}" if last else ""
    return f"the process ended without an answer (exit status {returncode}){tail}"
