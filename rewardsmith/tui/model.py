"""What the ranking app shows and keeps: an iteration's candidates as read from the run directory,
and the marks a person puts on them (best, worst, an optional full order).

Plain data and functions, no Textual, so they are easy to test and reuse.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path

from pydantic import ValidationError

from ..errors import RunDirError
from ..runners.protocol import REWARD_FILE, TRACE_FILE
from ..runs import RunDir
from ..schemas import CandidateResult, Ranking, RolloutTrace
from ..task import TaskSpec
from ..video import GIF, MP4


@dataclass(frozen=True)
class CandidateView:
    index: int
    folder: Path
    result: CandidateResult | None  # None while it has not finished training

    @property
    def status(self) -> str:
        return self.result.status if self.result else "pending"

    @property
    def fitness(self) -> float | None:
        return self.result.fitness if self.result else None

    @property
    def rankable(self) -> bool:
        """Only candidates with a trained policy can be ranked."""
        return self.status == "ok"

    @property
    def code(self) -> str:
        if self.result and self.result.code:
            return self.result.code
        path = self.folder / REWARD_FILE
        return path.read_text() if path.is_file() else ""

    def component_means(self) -> dict[str, float]:
        """Each reward component's mean over the last stretch of training."""
        train = self.result.train if self.result else None
        if not train or not train.checkpoints:
            return {}
        return {name: s.mean for name, s in train.checkpoints[-1].components.items()}

    def curves(self) -> tuple[list[int], dict[str, list[float]]]:
        """Env steps of the training checkpoints, and each component's mean at them."""
        train = self.result.train if self.result else None
        if not train or not train.checkpoints:
            return [], {}
        steps = [c.step for c in train.checkpoints]
        names = list(train.checkpoints[-1].components)
        return steps, {n: [c.components[n].mean if n in c.components else float("nan") for c in train.checkpoints]
                       for n in names}

    @property
    def gif(self) -> Path:
        return self.folder / GIF

    @property
    def mp4(self) -> Path:
        return self.folder / MP4

    def trace(self) -> RolloutTrace | None:
        path = self.folder / TRACE_FILE
        try:
            return RolloutTrace.model_validate_json(path.read_text()) if path.is_file() else None
        except (ValidationError, ValueError):
            return None


@dataclass(frozen=True)
class IterationView:
    run_path: Path
    task: TaskSpec
    iteration: int
    candidates: list[CandidateView]
    previous: Ranking | None = None  # a person's ranking already given for this iteration
    vlm: Ranking | None = None       # the vision-language model's ranking of it, if one ranked it

    @cached_property
    def has_fitness(self) -> bool:
        return any(c.fitness is not None for c in self.candidates)

    def vlm_label(self, index: int) -> str:
        """Where the VLM put candidate ``index``: ``★ best``, ``✗ worst``, ``#2``, or nothing."""
        v = self.vlm
        if v is None:
            return ""
        if index == v.best:
            return "★ best"
        if index == v.worst:
            return "✗ worst"
        return f"#{v.order.index(index) + 1}" if index in v.order else ""


def latest_iteration(run: RunDir) -> int | None:
    """The last iteration with at least one finished candidate."""
    found = None
    iteration = 0
    while (proposals := run.load_proposals(iteration)) is not None:
        if any(run.load_result(iteration, c.index) is not None for c in proposals):
            found = iteration
        iteration += 1
    return found


def load_iteration(run_path: Path, iteration: int | None = None) -> IterationView:
    """Read one iteration (default: the latest with results) of the run in ``run_path``."""
    run, task, _ = RunDir.open(Path(run_path))
    if iteration is None:
        iteration = latest_iteration(run)
        if iteration is None:
            raise RunDirError(f"{run_path}: no trained candidates yet; nothing to rank")
    proposals = run.load_proposals(iteration)
    if proposals is None:
        raise RunDirError(f"{run_path}: there is no iteration {iteration + 1}")
    candidates = [CandidateView(c.index, run.candidate_dir(iteration, c.index), run.load_result(iteration, c.index))
                  for c in proposals]
    return IterationView(run.path, task, iteration, candidates, run.latest_ranking(iteration, judge="person"),
                         run.latest_ranking(iteration, judge="vlm"))


@dataclass
class Marks:
    """A person's marks on the candidates; ``ranking()`` turns them into a :class:`Ranking`."""

    rankable: set[int]
    best: int | None = None
    worst: int | None = None
    ranks: dict[int, int] = field(default_factory=dict)  # candidate -> place (1 is the best)

    def _check(self, index: int) -> None:
        if index not in self.rankable:
            raise ValueError(f"candidate {index} has no trained policy; it cannot be ranked")

    def mark_best(self, index: int) -> None:
        self._check(index)
        self.best = index
        if self.worst == index:
            self.worst = None

    def mark_worst(self, index: int) -> None:
        self._check(index)
        self.worst = index
        if self.best == index:
            self.best = None

    def set_rank(self, index: int, place: int) -> None:
        """Put ``index`` at ``place``; whoever had that place loses it."""
        self._check(index)
        self.ranks = {i: p for i, p in self.ranks.items() if p != place and i != index}
        self.ranks[index] = place

    def clear(self, index: int) -> None:
        self.ranks.pop(index, None)
        if self.best == index:
            self.best = None
        if self.worst == index:
            self.worst = None

    def adopt(self, ranking: Ranking) -> None:
        """Start from someone else's ranking (a VLM's): its best, worst and order become the marks."""
        self.best = self.worst = None
        self.ranks = {}
        for place, index in enumerate(ranking.order, start=1):
            if index in self.rankable:
                self.ranks[index] = place
        if ranking.best in self.rankable:
            self.mark_best(ranking.best)
        if ranking.worst is not None and ranking.worst in self.rankable:
            self.mark_worst(ranking.worst)

    def label(self, index: int) -> str:
        parts = []
        if self.best == index:
            parts.append("★ best")
        if self.worst == index:
            parts.append("✗ worst")
        if index in self.ranks:
            parts.append(f"#{self.ranks[index]}")
        return " ".join(parts)

    def ranking(self, iteration: int) -> Ranking:
        """The ranking to save; ``ValueError`` when no best candidate is known yet."""
        order = sorted(self.ranks, key=self.ranks.__getitem__)
        best = self.best if self.best is not None else next((i for i in order if i != self.worst), None)
        if best is None:
            raise ValueError("mark the best candidate first (b)")
        worst = self.worst
        if worst is None:
            worst = next((i for i in reversed(order) if i != best), None)
        if order:
            middle = [i for i in order if i not in (best, worst)]
            order = [best, *middle] + ([worst] if worst is not None else [])
        return Ranking(iteration=iteration, best=best, worst=worst, order=order,
                       time=time.strftime("%Y-%m-%dT%H:%M:%S%z"))
