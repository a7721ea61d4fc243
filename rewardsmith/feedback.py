"""The feedback seam: judge an iteration's candidates (best, worst, order) for the designer.

- ``metric``: by the task's fitness (ground truth).
- ``synthetic``: by fitness plus Gaussian noise, a stand-in for a person (ICPL's auto mode).
- ``human``: a person ranks the candidates in the terminal UI (``rewardsmith rank``).
"""

from __future__ import annotations

import random
from typing import Protocol

from .errors import RewardsmithError
from .schemas import Feedback, IterationRecord
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


def make_feedback(kind: str, **options) -> FeedbackSource:
    if kind == "metric":
        return MetricFeedback()
    if kind == "synthetic":
        return SyntheticFeedback(**options)
    raise RewardsmithError(f"unknown feedback {kind!r} (known: metric, synthetic)")
