"""The same grading jobs on Dask distributed: a local cluster here, a university cluster there.

    python -m coursekit.course autograde course --engine dask --jobs 4           # LocalCluster
    python -m coursekit.course autograde course --engine dask --scheduler tcp://head:8786

A job (coursekit.grading.batch.run_job) is plain data in and out, so Dask ships it to any worker
that has this project installed; nothing depends on a shared folder. On Slurm or PBS, start the
workers with dask-jobqueue (book/instructors.md shows how) and pass the scheduler's address.

Why Dask and not a home-made queue: when a worker process dies in the middle of a job (killed,
out of memory, its node lost), the scheduler notices and runs the job again on another worker
(up to `distributed.scheduler.allowed-failures` times). A job that ran twice is harmless here:
coursekit.grading.batch.merge_results keeps one result per (chapter, student, sha256).
"""
from __future__ import annotations

from typing import Callable

from coursekit.grading.batch import failed_scores, run_job


def run_dask(payloads: list[dict], workers: int = 2, scheduler: str | None = None,
             job: Callable[[dict], dict] = run_job,
             progress: Callable[[dict], None] | None = None) -> list[dict]:
    """Run every payload through `job` on Dask; results in completion order.

    workers: processes of the LocalCluster started when no scheduler address is given (one thread
    each: a job is one process that waits for its sandbox). A job that fails for good (every retry
    lost its worker) comes back as a failed result with the reason, so the batch still finishes.
    """
    try:
        from dask.distributed import Client, LocalCluster, as_completed
    except ImportError as err:  # the optional extra "homework" brings it
        raise ImportError("--engine dask needs Dask distributed: pip install -e '.[homework]'") from err
    if not isinstance(workers, int) or isinstance(workers, bool) or workers < 1:
        raise ValueError(f"workers must be an integer >= 1, got {workers!r}")
    cluster = None
    if scheduler is None:
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                               dashboard_address=None, silence_logs=40)
    results = []
    try:
        with Client(cluster if cluster is not None else scheduler) as client:
            futures = {client.submit(job, p, key=f"grade-{p['chapter']}-{p['student']}-{p['sha256'][:12]}",
                                     pure=False): p for p in payloads}
            for fut in as_completed(list(futures)):
                payload = futures[fut]
                try:
                    result = fut.result()
                except Exception as err:  # KilledWorker after every retry, or the job itself raising
                    result = {"chapter": payload["chapter"], "student": payload["student"],
                              "sha256": payload["sha256"], "wall": 0.0, "cpu": 0.0, "returncode": -1,
                              "log": "", "normalized": None,
                              "scores": failed_scores(payload, f"lost on the cluster: {type(err).__name__}: "
                                                      f"{str(err).splitlines()[0] if str(err) else ''}")}
                results.append(result)
                if progress:
                    progress(result)
    finally:
        if cluster is not None:
            cluster.close()
    return results
