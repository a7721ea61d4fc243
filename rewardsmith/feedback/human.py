"""``human`` feedback: a person ranks the iteration in the terminal UI (ICPL)."""

from __future__ import annotations

import sys
from pathlib import Path

from ..errors import FeedbackPending
from ..runs import RunDir
from ..schemas import Feedback, IterationRecord
from ..task import TaskSpec
from .ranking import feedback_from_order, ranked, ranking_feedback


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
            order = ranked(record, lambda c: -c.index)
            return feedback_from_order(record, self.kind, order, "fewer than two trained candidates; nobody was asked")
        run = RunDir(self.run_path)
        ranking = run.latest_ranking(record.iteration, judge="person")
        if ranking is None and self._can_ask():
            from ..tui.rank import rank_iteration

            ranking = rank_iteration(self.run_path, record.iteration)
        how = f"rank them with `rewardsmith rank {self.run_path}`, then continue with " \
              f"`rewardsmith solve --resume {self.run_path}`"
        if ranking is None:
            raise FeedbackPending(f"iteration {record.iteration + 1} is waiting for a person's ranking: {how}")
        named = {ranking.best, *ranking.order} | ({ranking.worst} if ranking.worst is not None else set())
        unknown = sorted(named - set(rankable))
        if unknown:
            raise FeedbackPending(f"the ranking of iteration {record.iteration + 1} names candidates without a "
                                  f"trained policy ({', '.join(map(str, unknown))}); {how}")
        return ranking_feedback(ranking)
