"""``metric`` feedback: the task's fitness (ground truth) ranks the candidates."""

from __future__ import annotations

from ..schemas import Feedback, IterationRecord
from ..task import TaskSpec
from .ranking import feedback_from_order, ranked


class MetricFeedback:
    kind = "metric"

    def judge(self, record: IterationRecord, task: TaskSpec) -> Feedback:
        order = ranked(record, lambda c: (c.fitness, -c.index))
        return feedback_from_order(record, self.kind, order, "ranked by task fitness")
