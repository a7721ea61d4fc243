"""The executor seam: run candidate jobs, several at once, and yield each outcome as it ends.

Backends: ``local`` (threads on this machine, :mod:`.local`) and ``ray`` (tasks on a Ray
cluster, :mod:`.ray`). Both take :class:`~rewardsmith.runners.jobs.CandidateJob` records and
run each through :func:`~rewardsmith.runners.jobs.train_and_evaluate` in the sandbox they were
given.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Protocol

from ...errors import RewardsmithError
from ..jobs import CandidateJob, JobOutcome
from ..sandboxes.base import Sandbox

EXECUTORS = ("local", "ray")


class Executor(Protocol):
    name: str
    sandbox: Sandbox  # where the jobs run

    def run(self, jobs: Iterable[CandidateJob]) -> Iterator[tuple[CandidateJob, JobOutcome]]:
        """Train and evaluate every job; yield ``(job, outcome)`` as each one ends."""
        ...

    def close(self) -> None: ...


def cpu_count() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:
        return os.cpu_count() or 1


PER_CORE = 2  # the most candidates trained at once per core when --parallel is not given


def trained_at_once(jobs: int, parallel: int | None = None) -> int:
    """How many of ``jobs`` candidates train at once on this machine: ``parallel`` (``--parallel``)
    or by default all that are ready (an iteration's), up to :data:`PER_CORE` per core. Three
    candidates on two cores then share them, rather than two training while the third waits and,
    later, trains alone beside an idle core."""
    return max(1, min(jobs, parallel or PER_CORE * cpu_count()))


def make_executor(name: str, sandbox: Sandbox, parallel: int | None = None, address: str | None = None,
                  notify: Callable[[str], None] | None = None) -> Executor:
    """``local`` or ``ray`` (``address``: the cluster to join, ``auto`` or ``HOST:PORT``; default:
    start a local one). ``notify`` hears what the executor found (the Ray cluster's nodes)."""
    if name == "local":
        from .local import LocalExecutor

        return LocalExecutor(sandbox, parallel)
    if name == "ray":
        from .ray import RayExecutor

        return RayExecutor(sandbox, parallel, address=address, notify=notify)
    raise RewardsmithError(f"unknown executor {name!r} (known: {', '.join(EXECUTORS)})")
