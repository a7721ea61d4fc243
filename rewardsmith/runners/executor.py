"""The executor seam: run candidate jobs, several at once, and yield each result as it ends."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from typing import TypeVar

from ..errors import RewardsmithError
from .jobs import JobOutcome, JobSpec, ProgressFn, train_and_evaluate
from .sandbox import Sandbox

T = TypeVar("T")
R = TypeVar("R")


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


class LocalExecutor:
    """Runs up to ``parallel`` jobs at once on this machine; each job gets an equal share of the
    cores as its torch thread count, so jobs do not oversubscribe the CPU."""

    name = "local"

    def __init__(self, parallel: int | None = None):
        self.cores = cpu_count()
        self.parallel = max(1, parallel or self.cores)

    def threads_per_job(self, jobs: int) -> int:
        return max(1, self.cores // max(1, min(self.parallel, jobs)))

    def run_job(self, spec: JobSpec, sandbox: Sandbox, threads: int,
                on_progress: ProgressFn | None = None) -> JobOutcome:
        """Train and evaluate one candidate here, in the calling thread."""
        return train_and_evaluate(spec, sandbox, on_progress=on_progress, threads=threads)

    def close(self) -> None:
        pass

    def map(self, fn: Callable[[T, int], R], items: list[T]) -> Iterator[tuple[T, R]]:
        """Call ``fn(item, threads)`` for every item; yield ``(item, result)`` as each finishes."""
        if not items:
            return
        threads = self.threads_per_job(len(items))
        pool = ThreadPoolExecutor(max_workers=min(self.parallel, len(items)))
        pending: dict[Future, T] = {pool.submit(fn, item, threads): item for item in items}
        try:
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    yield pending.pop(future), future.result()
        finally:
            # On Ctrl-C do not wait here for running jobs (the caller kills their sandboxes);
            # queued ones never start.
            pool.shutdown(wait=not pending, cancel_futures=True)


def make_executor(name: str, parallel: int | None = None, address: str | None = None, **options):
    if name == "local":
        return LocalExecutor(parallel)
    if name == "ray":
        from .ray_executor import RayExecutor

        return RayExecutor(parallel, address=address)
    raise RewardsmithError(f"unknown executor {name!r} (known: local, ray)")
