"""Grading a class with 1 and then 2 workers, in one run: seconds per submission and the ratio.

    .venv/bin/python benchmarks/grading_parallel.py                      # 40 submissions
    .venv/bin/python benchmarks/grading_parallel.py --students 10 --json out.json

It builds the course for chapters 2 and 4 in a temporary folder and generates a class: for each
chapter, students whose notebook is the full solution, a wrong answer (chapter 2: the KL with its
arguments swapped; chapter 4: the closed-form KL without its 1/2), the untouched release, a stub,
a truncated (malformed) file, and a correct answer that writes to stderr; in that order, round
robin. It then grades the same class twice through coursekit.course.autograde, once with one
worker and once with two, and prints, for each, the wall seconds of the grading jobs per
submission, their CPU seconds per submission, and the ratio of the one-worker to the two-worker
wall time of the jobs (the parallel part; the gradebook step after it is one writer by design and
is reported on its own). The display run is off (verdicts only): it executes whole chapters for
the hand grader's view, which would make the benchmark minutes per submission and measures the
chapters, not the grading. Both runs see the same machine load; on a shared machine compare the
ratio, not the seconds.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

CHAPTERS = ("02_sparse_autoencoders", "04_variational_autoencoders")
WRONG = {
    "02_sparse_autoencoders": ("kl_divergence", "def kl_divergence(rho, rho_hat):\n"
                               "    q = rho_hat.clamp(1e-6, 1 - 1e-6)\n"
                               "    return q * torch.log(q / rho) + (1 - q) * torch.log((1 - q) / (1 - rho))"),
    "04_variational_autoencoders": ("gaussian_kl_closed_form", "def gaussian_kl_closed_form(mu, logvar):\n"
                                    "    return (mu.pow(2) + logvar.exp() - 1.0 - logvar).sum(dim=1)"),
}
KINDS = ("full", "wrong", "release", "stub", "truncated", "stderr")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--students", type=int, default=20,
                        help="students per chapter (default 20: 40 submissions in all)")
    parser.add_argument("--json", help="write the measurements to this file (atomically)")
    args = parser.parse_args(argv)
    if args.students < 2:
        parser.error(f"--students must be at least 2, got {args.students}")
    return args


def _meta(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {})


def _answer(source_text: str) -> str:
    return "\n".join(ln for ln in source_text.split("\n") if "BEGIN SOLUTION" not in ln
                     and "END SOLUTION" not in ln)


def make_class(course_dir: Path, students: int) -> int:
    """Write the generated submissions into course_dir/submitted; return how many."""
    import nbformat

    n = 0
    for stem in CHAPTERS:
        source = nbformat.read(course_dir / "source" / stem / f"{stem}.ipynb", as_version=4)
        release = nbformat.read(course_dir / "release" / stem / f"{stem}.ipynb", as_version=4)
        answers = {_meta(c)["grade_id"]: _answer(c.source) for c in source.cells if _meta(c).get("solution")}
        full = copy.deepcopy(release)
        for cell in full.cells:
            if _meta(cell).get("solution"):
                cell.source = answers[_meta(cell)["grade_id"]]
        name, definition = WRONG[stem]
        for i in range(students):
            kind = KINDS[i % len(KINDS)]
            nb = copy.deepcopy(full)
            answer = next(c for c in nb.cells if _meta(c).get("solution")
                          and re.search(rf"^def {name}\(", c.source, re.M))
            if kind == "wrong":
                answer.source += "\n\n\n" + definition
            elif kind == "stderr":
                answer.source = "import sys\nprint('debug: here', file=sys.stderr)\n" + answer.source
            elif kind == "stub":
                answer.source = f"def {name}(*args):\n    return None"
            elif kind == "release":
                nb = release
            folder = course_dir / "submitted" / f"s{i:03d}-{kind}" / stem
            folder.mkdir(parents=True, exist_ok=True)
            text = nbformat.writes(nb)
            if kind == "truncated":
                text = text[: len(text) // 2]
            (folder / f"{stem}.ipynb").write_text(text, encoding="utf-8")
            n += 1
    return n


def run_rounds(students: int) -> dict:
    from coursekit.course import autograde, write_course

    rounds = {}
    with tempfile.TemporaryDirectory(prefix="funml-grading-bench-") as tmp:
        course_dir = Path(tmp) / "course"
        write_course(ROOT / "book", course_dir, chapters=list(CHAPTERS))
        n = make_class(course_dir, students)
        for workers in (1, 2):
            start = time.perf_counter()
            report = autograde(course_dir, jobs=workers, display=False, verbose=False)
            rounds[workers] = {"submissions": n, "total_wall_s": time.perf_counter() - start,
                               "jobs_wall_s": report.jobs_wall, "job_wall_sum_s": report.job_wall,
                               "job_cpu_sum_s": report.job_cpu,
                               "wall_per_submission_s": report.jobs_wall / n,
                               "cpu_per_submission_s": report.job_cpu / n,
                               "gradebook_wall_s": report.timing.wall - report.jobs_wall}
    return rounds


def report(rounds: dict) -> dict:
    one, two = rounds[1], rounds[2]
    ratio = one["jobs_wall_s"] / two["jobs_wall_s"]
    print(f"{one['submissions']} submissions of chapters 2 and 4 (display run off: verdicts only)")
    for workers, r in rounds.items():
        print(f"{workers} worker(s): jobs {r['jobs_wall_s']:.1f} s wall = {r['wall_per_submission_s']:.2f} s "
              f"per submission, {r['cpu_per_submission_s']:.2f} s CPU per submission; gradebook step "
              f"(one writer) {r['gradebook_wall_s']:.1f} s")
    print(f"1 vs 2 workers: the jobs took {ratio:.2f}x as long with one worker "
          f"(cores here: {os.cpu_count()}, load average {os.getloadavg()[0]:.1f})")
    return {"rounds": {str(k): v for k, v in rounds.items()}, "ratio_1_vs_2": ratio,
            "cores": os.cpu_count(), "load_average": os.getloadavg()[0], "display": False}


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    result = report(run_rounds(args.students))
    if args.json:
        from funml_lib.atomic import atomic_write_text

        atomic_write_text(args.json, json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
