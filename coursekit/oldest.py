"""The oldest supported versions, as an environment that CI builds and runs the book in (`make oldest`).

pyproject.toml states a lower bound `name>=X` for every dependency the book supports at more than
one version; this module pins each to exactly X (`constraints`), builds `.venv-oldest` with them
(`build`), then executes every chapter at its tiny test parameters (notebook metadata
funml.test_parameters, papermill, explorers built: FUNML_STATIC unset) and runs the widget tests
there (`run`).

torch and torchvision stay at the versions of the main environment (.venv): no older CPU build of
torchvision can be had here, and a CUDA torch is gigabytes. Their files, and those of the packages
they need, are hard-linked from .venv instead of downloaded (seconds, no disk used; a hard link is
a second name for the file, so pip replacing one in .venv-oldest never touches .venv's copy).

    python -m coursekit.oldest constraints          # the pins, one per line
    python -m coursekit.oldest build .venv-oldest   # venv + pins (+ torch linked from this Python)
    .venv-oldest/bin/python -m coursekit.oldest run # every chapter, then tests/test_widgets.py
"""
from __future__ import annotations

import argparse
import importlib.metadata as metadata
import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXTRAS = ("test", "site", "classic")  # what the oldest environment installs besides the library
SHARED = ("torch", "torchvision")  # kept at .venv's versions, linked rather than downloaded
CHAPTER_TIMEOUT_S = 600  # one chapter at its tiny parameters takes well under a minute


def _norm(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def lower_bounds(pyproject: Path = ROOT / "pyproject.toml", extras: tuple[str, ...] = EXTRAS) -> dict[str, str]:
    """{name: X} for every `name>=X` among the dependencies and the given extras."""
    from packaging.requirements import Requirement

    project = tomllib.loads(pyproject.read_text(encoding="utf-8"))["project"]
    reqs = list(project["dependencies"])
    for extra in extras:
        reqs += project["optional-dependencies"][extra]
    bounds = {}
    for text in reqs:
        req = Requirement(text)
        for spec in req.specifier:
            if spec.operator == ">=":
                bounds[_norm(req.name)] = spec.version
    return bounds


def constraints(pyproject: Path = ROOT / "pyproject.toml") -> list[str]:
    """`name==X` for every lower bound, torch and torchvision at the versions installed here."""
    pins = []
    for name, version in sorted(lower_bounds(pyproject).items()):
        if name in SHARED:
            installed = metadata.version(name)
            if _release(installed) < _release(version):
                raise SystemExit(f"{name} {installed} in {sys.prefix} is older than pyproject.toml's "
                                 f"lower bound {version}")
            version = installed.split("+")[0]
        pins.append(f"{name}=={version}")
    return pins


def _release(version: str) -> tuple[int, ...]:
    return tuple(int(p) for p in re.findall(r"\d+", version.split("+")[0])[:3])


def closure(roots: tuple[str, ...], skip: set[str]) -> list[metadata.Distribution]:
    """The installed distributions `roots` need (through their requirements and extras), minus `skip`."""
    from packaging.requirements import Requirement

    seen: dict[str, metadata.Distribution] = {}
    todo = [(r, frozenset()) for r in roots]
    while todo:
        name, extras = todo.pop()
        if _norm(name) in seen or _norm(name) in skip:
            continue
        dist = metadata.distribution(name)
        seen[_norm(name)] = dist
        for text in dist.requires or []:
            req = Requirement(text)
            wanted = [{"extra": e} for e in extras | {""}]
            if req.marker is None or any(req.marker.evaluate(env) for env in wanted):
                todo.append((req.name, frozenset(req.extras)))
    return list(seen.values())


def link_into(site: Path, dists: list[metadata.Distribution]) -> int:
    """Hard-link every file of `dists` (as listed in their RECORD) into `site`; return the count."""
    count = 0
    for dist in dists:
        for entry in dist.files or []:
            if entry.parts[0] == ".." or "__pycache__" in entry.parts:
                continue  # scripts in bin/, and caches each interpreter writes for itself
            src, dst = Path(dist.locate_file(entry)), site / entry
            if not src.is_file() or dst.exists():
                continue
            dst.parent.mkdir(parents=True, exist_ok=True)
            os.link(src, dst)
            count += 1
    return count


def build(venv: Path) -> None:
    """Create `venv` with the oldest versions; torch and what it needs are linked from this Python."""
    venv = Path(venv)
    if venv.exists():
        raise SystemExit(f"{venv} exists: remove it first (make oldest does)")
    pins = constraints()
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig."
                                "get_paths()['purelib'])"], check=True, capture_output=True,
                               text=True).stdout.strip())
    pinned = {p.split("==")[0] for p in pins} - set(SHARED)
    files = link_into(site, closure(SHARED, skip=pinned | {"pip", "setuptools"}))  # the venv has its own
    print(f"linked {files} files of torch and torchvision {metadata.version('torchvision')} from {sys.prefix}")
    (venv / "constraints.txt").write_text("\n".join(pins) + "\n", encoding="utf-8")
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "--quiet"]
    subprocess.run(pip + ["-c", str(venv / "constraints.txt"), "-e", f"{ROOT}[{','.join(EXTRAS)}]"], check=True)
    print("oldest environment: " + ", ".join(pins))


def chapters() -> list[Path]:
    from coursekit.toc import chapter_notebooks

    return chapter_notebooks(ROOT)


def execute(nb_path: Path, out: Path) -> str | None:
    """Run one chapter at its tiny test parameters; None when it ran through, else the error."""
    import nbformat
    import papermill

    params = nbformat.read(nb_path, as_version=4).metadata.get("funml", {}).get("test_parameters", {})
    try:
        papermill.execute_notebook(str(nb_path), str(out / nb_path.name), parameters=params,
                                   cwd=str(nb_path.parent), kernel_name="python3",
                                   execution_timeout=CHAPTER_TIMEOUT_S, progress_bar=False)
    except Exception as err:  # papermill's PapermillExecutionError names the cell and the error
        return str(err).strip().splitlines()[-1][:300]
    return None


def run(out: Path, jobs: int) -> int:
    """Every chapter at its tiny test parameters with live explorers, then the widget tests."""
    from concurrent.futures import ThreadPoolExecutor

    out.mkdir(parents=True, exist_ok=True)
    print(f"executed chapters go to {out}", flush=True)
    os.environ.pop("FUNML_STATIC", None)  # explorers are built: that is what ipywidgets 7 must survive
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    failed = []
    # each chapter runs in its own kernel process: `jobs` of them at once use that many cores
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        for nb_path, error in zip(chapters(), pool.map(lambda p: execute(p, out), chapters())):
            print(f"ok      {nb_path.name}" if error is None else f"FAILED  {nb_path.name}: {error}", flush=True)
            if error is not None:
                failed.append(nb_path.name)
    tests = subprocess.run([sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider",
                            str(ROOT / "tests" / "test_widgets.py")])
    if tests.returncode:
        failed.append("tests/test_widgets.py")
    versions = ", ".join(f"{n} {metadata.version(n)}" for n in ("ipywidgets", "ipython", "ipykernel",
                                                                   "numpy", "matplotlib", "torch"))
    print(f"oldest environment ({versions}): " + (f"FAILED {failed}" if failed else "every chapter and "
                                                  "the widget tests pass"))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m coursekit.oldest", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("constraints", help="print the pins")
    b = sub.add_parser("build", help="create the environment")
    b.add_argument("venv", type=Path)
    r = sub.add_parser("run", help="execute every chapter and the widget tests in this Python")
    r.add_argument("--out", type=Path, help="folder for the executed notebooks (default: a new temporary one)")
    r.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1), help="chapters at once")
    args = parser.parse_args(argv)
    if args.command == "constraints":
        print("\n".join(constraints()))
    elif args.command == "build":
        build(args.venv)
    else:
        if args.jobs < 1:
            parser.error(f"--jobs must be an integer >= 1, got {args.jobs}")
        import tempfile

        return run(args.out or Path(tempfile.mkdtemp(prefix="funml-oldest-")), args.jobs)
    return 0


if __name__ == "__main__":
    sys.exit(main())
