"""The feedback seam: judge an iteration's candidates (best, worst, order) for the designer.

- ``metric``: by the task's fitness (ground truth).
- ``synthetic``: by fitness plus Gaussian noise, a stand-in for a person (ICPL's auto mode).
- ``human``: a person ranks the candidates in the terminal UI (``rewardsmith rank``).
"""

from __future__ import annotations

import random
import sys
from pathlib import Path
from typing import Protocol

from .errors import FeedbackPending, RewardsmithError
from .runs import RunDir
from .schemas import Feedback, IterationRecord, Ranking
from .task import TaskSpec


class FeedbackSource(Protocol):
    kind: str

    def judge(self, record: IterationRecord, task: TaskSpec) -> Feedback: ...


def _ranked(record: IterationRecord, score) -> list[int]:
    ok = [c for c in record.candidates if c.status == "ok" and c.fitness is not None]
    return [c.index for c in sorted(ok, key=score, reverse=True)]


def _feedback(record: IterationRecord, kind: str, order: list[int], note: str) -> Feedback:
    return Feedback(iteration=record.iteration, kind=kind, best=order[0] if order else None,
                    worst=order[-1] if len(order) > 1 else None, order=order, note=note)


class MetricFeedback:
    kind = "metric"

    def judge(self, record: IterationRecord, task: TaskSpec) -> Feedback:
        order = _ranked(record, lambda c: (c.fitness, -c.index))
        return _feedback(record, self.kind, order, "ranked by task fitness")


class SyntheticFeedback:
    """Ranks by fitness with noise of ``noise`` times the success threshold's magnitude."""

    kind = "synthetic"

    def __init__(self, noise: float = 0.1, seed: int = 0):
        self.noise, self.seed = noise, seed

    def judge(self, record: IterationRecord, task: TaskSpec) -> Feedback:
        rng = random.Random(f"{self.seed}-{record.iteration}")
        scale = self.noise * max(abs(task.fitness.success_threshold), 1e-6)
        noisy = {c.index: (c.fitness or 0.0) + rng.gauss(0, scale) for c in record.candidates}
        order = _ranked(record, lambda c: noisy[c.index])
        return _feedback(record, self.kind, order, f"fitness with noise (std {scale:.3g})")


class HumanFeedback:
    """A person ranks the iteration: a ranking saved earlier (``rewardsmith rank RUN``) is used;
    otherwise the ranking app opens when there is a terminal, and the run stops when there is not."""

    kind = "human"

    def __init__(self, run_path: Path, interactive: bool | None = None):
        self.run_path = Path(run_path)
        self.interactive = interactive

    def _can_ask(self) -> bool:
        if self.interactive is not None:
            return self.interactive
        return sys.stdin.isatty() and sys.stdout.isatty()

    def judge(self, record: IterationRecord, task: TaskSpec) -> Feedback:
        rankable = [c.index for c in record.candidates if c.status == "ok"]
        if len(rankable) < 2:  # nothing to compare: no question for the person
            order = _ranked(record, lambda c: -c.index)
            return _feedback(record, self.kind, order, "fewer than two trained candidates; nobody was asked")
        run = RunDir(self.run_path)
        ranking = run.latest_ranking(record.iteration)
        if ranking is None and self._can_ask():
            from .tui.rank import rank_iteration

            ranking = rank_iteration(self.run_path, record.iteration)
        how = f"rank them with `rewardsmith rank {self.run_path}`, then continue with " \
              f"`rewardsmith solve --resume {self.run_path}`"
        if ranking is None:
            raise FeedbackPending(f"iteration {record.iteration + 1} is waiting for a person's ranking: {how}")
        unknown = sorted({ranking.best, ranking.worst, *ranking.order} - {None, *rankable})
        if unknown:
            raise FeedbackPending(f"the ranking of iteration {record.iteration + 1} names candidates without a "
                                  f"trained policy ({', '.join(map(str, unknown))}); {how}")
        return ranking_feedback(ranking)


def ranking_feedback(ranking: Ranking) -> Feedback:
    order = ranking.order or [i for i in (ranking.best, ranking.worst) if i is not None]
    return Feedback(iteration=ranking.iteration, kind="human", best=ranking.best, worst=ranking.worst,
                    order=order, note=f"ranked by a person at {ranking.time}")


FEEDBACKS = ("metric", "human", "synthetic")


def make_feedback(kind: str, run_path: Path | None = None, noise: float | None = None, seed: int = 0,
                  interactive: bool | None = None) -> FeedbackSource:
    """``metric``; ``synthetic`` (``noise``: std as a fraction of the success threshold, default
    0.1; ``seed`` for its draws); ``human`` (needs the run directory, where rankings are kept;
    ``interactive`` overrides the terminal check)."""
    if kind == "metric":
        return MetricFeedback()
    if kind == "synthetic":
        if noise is not None and not noise >= 0:
            raise RewardsmithError(f"--feedback-noise must be 0 or more, got {noise}")
        return SyntheticFeedback(noise=0.1 if noise is None else noise, seed=seed)
    if kind == "human":
        if run_path is None:
            raise ValueError("human feedback needs the run directory")
        return HumanFeedback(run_path, interactive=interactive)
    raise RewardsmithError(f"unknown feedback {kind!r} (known: {', '.join(FEEDBACKS)})")
