"""`make gpu-check`: prove the CUDA path in one short run and print one summary.

    python -m coursekit.gpu_check [--device cuda|cpu] [--tiny] [--budget 300] [--out DIR]

Steps, each in its own process group with a timeout inside one overall budget (so nothing hangs):
  0. preflight: torch must see a CUDA device (else exit 2 at once, saying why) and pytest, papermill,
     nbformat must import;
  1. the `cuda`-marked tests (pytest -m cuda) with FUNML_TEST_DEVICE set to the device;
  2. chapters 02 and 05 at their default parameters with `-p device cuda` via papermill
     (FUNML_STATIC=1, FUNML_CLAIMS=strict); executed notebooks and logs go to --out;
  3. benchmarks/train_throughput.py --device cuda (pytorch/examples' DataLoader loop vs funml_lib.fit).
Then one summary: tests passed, chapter times, samples/s of both benchmark ways and their ratio, checked
against issue 15's targets (fit >= 5x the DataLoader loop; a 60,000-digit FC-VAE epoch < 0.3 s).
Exit status: 0 all passed, 1 a step failed or timed out, 2 the machine cannot run the check.

The default budget (300 s) leaves a minute of the 6-minute target for `make venv`. FUNML_DATA is passed
through: point it at MNIST's IDX files to measure on the genuine test split; unset, the chapters use
whatever load_mnist finds (torchvision's download, else the offline digits).
Dry path without a GPU (proves the script itself): --device cpu --tiny runs the same tests on the CPU,
the chapters with their metadata's test_parameters and FUNML_CLAIMS=skip, and a 2,000-sample benchmark.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ("02_sparse_autoencoders", "05_vae_on_mnist")
TARGET_RATIO, TARGET_EPOCH_S = 5.0, 0.3  # issue 15, on one H100-class GPU
BENCH_RESERVE_S = 90  # budget kept back for the benchmark while the chapters run


def say(message: str) -> None:
    print(f"[gpu-check] {message}", flush=True)


def preflight(device: str) -> str | None:
    """None when this machine can run the check, else the reason it cannot."""
    missing = [m for m in ("torch", "pytest", "papermill", "nbformat") if not _importable(m)]
    if missing:
        return (f"missing Python packages: {', '.join(missing)} (run `make venv`, or install the "
                f"'test' extra: pip install -e '.[test]')")
    if device != "cuda":
        return None
    import torch
    if torch.cuda.is_available():
        return None
    build = (f"a CPU-only build of torch {torch.__version__}" if torch.version.cuda is None
             else f"torch {torch.__version__} built for CUDA {torch.version.cuda}")
    smi = shutil.which("nvidia-smi")
    return (f"no CUDA device: torch.cuda.is_available() is False with {build}; "
            + ("nvidia-smi is installed, so check the driver and CUDA_VISIBLE_DEVICES" if smi
               else "no nvidia-smi on the PATH either (no NVIDIA driver)")
            + ". Run this on a GPU machine, or `python -m coursekit.gpu_check --device cpu --tiny` for the "
            "CPU dry run.")


def _importable(module: str) -> bool:
    import importlib.util
    return importlib.util.find_spec(module) is not None


def run(cmd: list[str], log: Path, timeout: float, env: dict[str, str]) -> tuple[int | None, float, str]:
    """Run cmd in its own process group with output to `log`; (exit code or None on timeout, seconds, tail)."""
    t0 = time.perf_counter()
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
        try:
            code = proc.wait(timeout=max(timeout, 1))
        except subprocess.TimeoutExpired:  # the whole group: papermill's kernel is a grandchild
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
            code = None
    text = log.read_text(errors="replace")
    return code, time.perf_counter() - t0, text[-3000:]


def test_files() -> list[str]:
    """tests/test_cuda.py plus any other test file that marks tests with `cuda`."""
    files = sorted(p for p in (ROOT / "tests").glob("test_*.py") if "mark.cuda" in p.read_text(errors="replace")
                   or p.name == "test_cuda.py")
    return [str(p.relative_to(ROOT)) for p in files]


def pytest_counts(text: str) -> dict[str, int]:
    counts = {k: 0 for k in ("passed", "failed", "skipped", "error", "deselected")}
    for n, what in re.findall(r"(\d+) (passed|failed|skipped|errors?|deselected)", text):
        counts["error" if what.startswith("error") else what] = int(n)
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", choices=("cuda", "cpu"), default="cuda")
    parser.add_argument("--tiny", action="store_true",
                        help="chapters at their test_parameters with FUNML_CLAIMS=skip, a short benchmark")
    parser.add_argument("--budget", type=float, default=300.0, help="seconds for all steps (default 300)")
    parser.add_argument("--out", default=None, help="folder for logs and executed notebooks (default: a temp dir)")
    args = parser.parse_args(argv)
    start = time.perf_counter()
    remaining = lambda: args.budget - (time.perf_counter() - start)  # noqa: E731

    reason = preflight(args.device)
    if reason:
        print(f"gpu-check: FAILED before starting: {reason}", file=sys.stderr, flush=True)
        return 2
    import torch
    name = torch.cuda.get_device_name(0) if args.device == "cuda" else "CPU (dry run)"
    out = Path(args.out or tempfile.mkdtemp(prefix="gpu-check-"))
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONUNBUFFERED="1", FUNML_STATIC="1", FUNML_TEST_DEVICE=args.device,
               PYTHONPATH=os.pathsep.join([str(ROOT)] + [p for p in [os.environ.get("PYTHONPATH")] if p]))
    data = "$FUNML_DATA" if os.environ.get("FUNML_DATA") else "no FUNML_DATA (download or offline digits)"
    say(f"{name}, torch {torch.__version__}, data: {data}, budget {args.budget:.0f} s, logs in {out}")
    lines, failures = [], []

    # 1. tests
    files = test_files()
    code, secs, tail = run([sys.executable, "-m", "pytest", "-m", "cuda", "-q", "-p", "no:cacheprovider",
                            *files], out / "tests.log", min(150, remaining()), env)
    c = pytest_counts(tail)
    ok = code == 0 and c["passed"] > 0 and not (args.device == "cuda" and c["skipped"])
    lines.append(f"tests ({', '.join(files)}): {c['passed']} passed, {c['failed']} failed, "
                 f"{c['error']} errors, {c['skipped']} skipped in {secs:.0f} s"
                 + ("" if code is not None else " - TIMED OUT"))
    if not ok:
        failures.append("tests")
        print(tail[-1500:], flush=True)
    say(lines[-1])

    # 2. chapters
    for stem in CHAPTERS:
        nb = ROOT / "book" / f"{stem}.ipynb"
        params = ["-p", "device", args.device]
        chapter_env = dict(env, FUNML_CLAIMS="strict")
        if args.tiny:
            import nbformat
            tiny = nbformat.read(nb, as_version=4).metadata.get("funml", {}).get("test_parameters", {})
            params += ["-y", json.dumps(tiny)]
            chapter_env["FUNML_CLAIMS"] = "skip"
        budget = remaining() - BENCH_RESERVE_S
        if budget < 10:
            lines.append(f"chapter {stem}: NOT RUN (budget spent)")
            failures.append(stem)
            continue
        code, secs, tail = run([sys.executable, "-m", "papermill", str(nb), str(out / f"{stem}.ipynb"),
                                "--cwd", "book", "--no-progress-bar", "-k", "python3", *params],
                               out / f"{stem}.log", min(240, budget), chapter_env)
        status = "ok" if code == 0 else ("TIMED OUT" if code is None else f"FAILED (exit {code})")
        lines.append(f"chapter {stem} (device={args.device}, "
                     f"{'test_parameters' if args.tiny else 'defaults'}, FUNML_CLAIMS="
                     f"{chapter_env['FUNML_CLAIMS']}): {secs:.1f} s {status}")
        if code != 0:
            failures.append(stem)
            print(tail[-1500:], flush=True)
        say(lines[-1])

    # 3. benchmark
    bench_json = out / "bench.json"
    size = ["--samples", "2000", "--max-seconds", "10"] if args.tiny else ["--samples", "60000",
                                                                           "--max-seconds", "45"]
    code, secs, tail = run([sys.executable, "benchmarks/train_throughput.py", "--device", args.device,
                            "--json", str(bench_json), *size], out / "bench.log",
                           max(min(120, remaining()), 30), env)
    def verdict(met: bool) -> str:  # the targets are for a GPU: on the CPU dry run they only inform
        return ("met" if met else "NOT met") + (" - a GPU target, n/a on the CPU" if args.device == "cpu" else "")

    if code == 0 and bench_json.is_file():
        b = json.loads(bench_json.read_text())
        lines.append(f"benchmark ({b['samples']:,} samples per way, batch {b['batch_size']}): (a) pytorch/examples "
                     f"DataLoader loop {b['rate_a']:,.0f} samples/s, (b) funml_lib.fit {b['rate_b']:,.0f} "
                     f"samples/s, ratio {b['ratio']:.1f}x (target >= {TARGET_RATIO:g}x: "
                     f"{verdict(b['ratio'] >= TARGET_RATIO)})")
        lines.append(f"FC-VAE epoch over 60,000 digits at (b)'s rate: {b['epoch_60k_seconds']:.3f} s "
                     f"(target < {TARGET_EPOCH_S:g} s on an H100-class GPU: "
                     f"{verdict(b['epoch_60k_seconds'] < TARGET_EPOCH_S)})")
    else:
        lines.append("benchmark: " + ("TIMED OUT" if code is None else f"FAILED (exit {code})"))
        failures.append("benchmark")
        print(tail[-1500:], flush=True)
    say(lines[-1])

    total = time.perf_counter() - start
    print(f"\n=== gpu-check summary: {name}, torch {torch.__version__} ===")
    for line in lines:
        print(f"  {line}")
    print(f"  total {total:.0f} s (budget {args.budget:.0f} s); logs and executed notebooks in {out}")
    print(f"RESULT: {'PASS' if not failures else 'FAIL (' + ', '.join(failures) + ')'}", flush=True)
    return 0 if not failures else 1


if __name__ == "__main__":
    sys.exit(main())
