"""``local`` executor: candidate jobs in threads on this machine, each with its share of the cores."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait

from ..jobs import CandidateJob, JobOutcome, train_and_evaluate
from ..sandboxes.base import Sandbox
from . import cpu_count, trained_at_once


class LocalExecutor:
    """Runs up to ``parallel`` jobs at once (default: :func:`trained_at_once`); each job gets an
    equal share of the cores (at least one) as its torch thread count."""

    name = "local"
    local = True  # its jobs' folders are this machine's (live experience sharing can reach them)

    def __init__(self, sandbox: Sandbox, parallel: int | None = None):
        self.sandbox = sandbox
        self.cores = cpu_count()
        self.parallel = parallel  # None: decided by how many jobs there are

    def at_once(self, jobs: int) -> int:
        return trained_at_once(jobs, self.parallel)

    def threads_per_job(self, jobs: int) -> int:
        return max(1, self.cores // self.at_once(jobs))

    def run(self, jobs: Iterable[CandidateJob]) -> Iterator[tuple[CandidateJob, JobOutcome]]:
        jobs = list(jobs)
        if not jobs:
            return
        threads = self.threads_per_job(len(jobs))

        def one(job: CandidateJob) -> JobOutcome:
            if job.on_start is not None:
                job.on_start()
            return train_and_evaluate(job, self.sandbox, threads)

        pool = ThreadPoolExecutor(max_workers=self.at_once(len(jobs)))
        pending: dict[Future, CandidateJob] = {pool.submit(one, job): job for job in jobs}
        try:
            while pending:
                finished, _ = wait(pending, return_when=FIRST_COMPLETED)
                for future in finished:
                    yield pending.pop(future), future.result()
        finally:
            # On Ctrl-C do not wait here for running jobs (the caller kills their sandboxes);
            # queued ones never start.
            pool.shutdown(wait=not pending, cancel_futures=True)

    def close(self) -> None:
        pass
