"""``synthetic`` feedback: fitness plus Gaussian noise, a stand-in for a person (ICPL's auto mode)."""

from __future__ import annotations

import random

from ..schemas import Feedback, IterationRecord
from ..task import TaskSpec
from .ranking import feedback_from_order, ranked


class SyntheticFeedback:
    """Ranks by fitness with noise of ``noise`` times the success threshold's magnitude."""

    kind = "synthetic"

    def __init__(self, noise: float = 0.1, seed: int = 0):
        self.noise, self.seed = noise, seed

    def judge(self, record: IterationRecord, task: TaskSpec) -> Feedback:
        rng = random.Random(f"{self.seed}-{record.iteration}")
        scale = self.noise * max(abs(task.fitness.success_threshold), 1e-6)
        noisy = {c.index: (c.fitness or 0.0) + rng.gauss(0, scale) for c in record.candidates}
        order = ranked(record, lambda c: noisy[c.index])
        return feedback_from_order(record, self.kind, order, f"fitness with noise (std {scale:.3g})")
