"""Trajectory screening: judge a reward on stored episodes before it trains (after CARD's
trajectory preference evaluation).

The run keeps episodes whose task fitness is known (:mod:`rewardsmith.episodes`: the clean
evaluations of earlier candidates, random policies in the first iteration). A candidate's reward
is scored on a selection of them in its sandbox (the dry run's job does it, see
:func:`~rewardsmith.runners.jobs.check_reward`); its returns should order the episodes as their
fitness does. A reward that ranks them clearly the wrong way round, or gives every episode the
same return, is not trained; its verdict says which episodes it ranked wrongly and how, for the
designer's next prompt.

The returns come from the sandbox, so a hostile reward could fake a good ranking: screening
only saves training, it never decides a candidate's fitness (the clean evaluation does).

>>> import numpy as np
>>> from rewardsmith.schemas import EpisodeMeta
>>> metas = [EpisodeMeta(source="random", fitness=f, length=10) for f in (0.1, 0.2, 0.5, 0.9)]
>>> judge([4.0, 3.0, 2.0, 1.0], metas, min_correlation=0.0).passed
False
>>> judge([1.0, 2.0, 2.5, 9.0], metas, min_correlation=0.0).passed
True
"""

from __future__ import annotations

import threading
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from ..episodes import EpisodeStore, informative, spread
from ..schemas import EpisodeMeta, ScreeningReport
from ..task import ScreeningSpec

CONSTANT_TOLERANCE = 1e-6


@dataclass(frozen=True)
class Selection:
    """The stored episodes candidates are judged on now: one file for the sandbox, and what is
    known of each episode."""

    version: int
    data: bytes
    meta: list[EpisodeMeta]


def rank(values: np.ndarray) -> np.ndarray:
    """Ranks from 0, ties sharing their mean rank."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    for v in np.unique(values):
        tied = values == v
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    return ranks


def spearman(x: np.ndarray, y: np.ndarray) -> float | None:
    rx, ry = rank(x), rank(y)
    if rx.std() == 0 or ry.std() == 0:
        return None
    return float(np.corrcoef(rx, ry)[0, 1])


def pair_accuracy(returns: np.ndarray, fitness: np.ndarray) -> float | None:
    """Of the pairs whose fitness differs, the fraction whose better episode got the higher
    return (a tie in returns counts half)."""
    df = fitness[:, None] - fitness[None, :]
    dr = returns[:, None] - returns[None, :]
    pairs = df > 1e-9
    if not pairs.any():
        return None
    right = (dr[pairs] > 0).sum() + 0.5 * (dr[pairs] == 0).sum()
    return float(right / pairs.sum())


def judge(returns: Sequence[float], meta: Sequence[EpisodeMeta], min_correlation: float) -> ScreeningReport:
    """How returns ``returns`` rank the episodes ``meta`` against their fitness."""
    n = len(meta)
    if len(returns) != n:
        return ScreeningReport(episodes=n, passed=False,
                               reason=f"screening: the reward's job returned {len(returns)} returns for {n} episodes")
    r = np.asarray(returns, dtype=np.float64)
    f = np.array([m.fitness for m in meta])
    lengths = np.array([m.length for m in meta], dtype=np.float64)
    if not informative(f):
        return ScreeningReport(episodes=n, passed=True, judged=False)
    # A reward that is the same on every state still teaches when episodes end early (an alive
    # bonus, a cost per step: CartPole's own +1 is one), so only returns that do not differ at all
    # are turned away here; whether they order the episodes rightly is judged below.
    if float(r.max() - r.min()) <= CONSTANT_TOLERANCE * max(1.0, float(np.abs(r).mean())):
        per_step = r / lengths
        what = (f"it pays the same on every state of {n} stored episodes ({per_step[0]:.4g} per step, whatever "
                "happens)" if np.ptp(per_step) <= CONSTANT_TOLERANCE * max(1.0, float(np.abs(per_step).mean()))
                else f"its returns are the same on all {n} stored episodes ({r[0]:.4g}), whatever happened in them")
        return ScreeningReport(
            episodes=n, passed=False,
            reason=(f"screening: {what}, so a policy learns nothing from it about the task; make it depend "
                    "on the state variables the goal is about"))
    rho, accuracy = spearman(r, f), pair_accuracy(r, f)
    quarter = max(1, n // 4)
    by_fitness = np.argsort(f, kind="stable")
    worst, best = by_fitness[:quarter], by_fitness[-quarter:]
    best_return, worst_return = float(r[best].mean()), float(r[worst].mean())
    report = ScreeningReport(episodes=n, correlation=rho, pair_accuracy=accuracy, best_mean_return=best_return,
                             worst_mean_return=worst_return, passed=True)
    if rho is not None and rho < min_correlation and best_return < worst_return:
        return report.model_copy(update={"passed": False, "reason": _wrong_order(r, f, meta, report, best, worst)})
    return report


def _wrong_order(r: np.ndarray, f: np.ndarray, meta: Sequence[EpisodeMeta], report: ScreeningReport,
                 best: np.ndarray, worst: np.ndarray) -> str:
    """Which episodes it ranked wrongly, and how, in words for the designer."""
    top = int(np.argmax(f))
    beaten = [i for i in range(len(f)) if f[i] < f[top] - 1e-9 and r[i] > r[top]]
    example = ""
    if beaten:
        low = min(beaten, key=lambda i: f[i])
        example = (f" For example, {meta[top].label()} (task fitness {f[top]:.3g}, {meta[top].length} steps) got a "
                   f"return of {r[top]:.4g}, less than {meta[low].label()} (task fitness {f[low]:.3g}, "
                   f"{meta[low].length} steps) with {r[low]:.4g}.")
    wrong = 1 - (report.pair_accuracy or 0.0)
    return (f"screening: its returns on {len(f)} stored episodes run against their task fitness (rank correlation "
            f"{report.correlation:+.2f}; it preferred the worse episode in {wrong:.0%} of the pairs): the best quarter "
            f"by task fitness (mean {f[best].mean():.3g}) got a mean return of {report.best_mean_return:.4g}, the worst "
            f"quarter (mean {f[worst].mean():.3g}) {report.worst_mean_return:.4g}.{example} It pays for what the task "
            "does not want (check each term's sign, and whether ending an episode early pays); not trained")


class Screening:
    """The run's episode store as the critic uses it: a selection spread over fitness (cached
    until episodes are added) and the judgement of a reward's returns on it."""

    def __init__(self, store: EpisodeStore, spec: ScreeningSpec):
        self.store, self.spec = store, spec
        self._lock = threading.Lock()
        self._selection: Selection | None = None
        self._version = -1

    def selection(self) -> Selection | None:
        """The episodes to judge on now, or ``None`` when they do not differ enough in fitness."""
        with self._lock:
            version = self.store.version
            if version != self._version:
                entries = spread(self.store.entries, self.spec.episodes)
                fitness = [e.meta.fitness for e in entries]
                self._selection = None
                if informative(fitness):
                    batch = self.store.load(entries)
                    self._selection = Selection(version, batch.to_bytes(), batch.meta)
                self._version = version
            return self._selection

    def judge(self, returns: Sequence[float], selection: Selection) -> ScreeningReport:
        return judge(returns, selection.meta, self.spec.min_correlation)
