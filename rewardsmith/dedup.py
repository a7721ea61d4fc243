"""Spot a reward that is nearly the same as one already trained, before paying for training.

Two rewards are compared on the same batch of states (the dry run's signature: the total reward
on a fixed, seeded random rollout). If they order those states almost identically (Spearman
rank correlation at or above a threshold), PPO would learn nearly the same policy from both.

>>> spearman([1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 30.0, 45.0])
1.0
>>> round(spearman([1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0]), 6)
-1.0
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import TypeVar

K = TypeVar("K")


def _ranks(values: Sequence[float]) -> list[float]:
    """Ranks from 1, ties sharing their average rank."""
    order = sorted(range(len(values)), key=values.__getitem__)
    ranks = [0.0] * len(values)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and values[order[j + 1]] == values[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    return ranks


def spearman(a: Sequence[float], b: Sequence[float]) -> float:
    """Spearman rank correlation; two constant sequences count as identical (1.0), one as 0.0."""
    if len(a) != len(b) or not a:
        return 0.0
    ra, rb = _ranks(a), _ranks(b)
    ma, mb = sum(ra) / len(ra), sum(rb) / len(rb)
    cov = sum((x - ma) * (y - mb) for x, y in zip(ra, rb))
    va = sum((x - ma) ** 2 for x in ra)
    vb = sum((y - mb) ** 2 for y in rb)
    if va == 0 or vb == 0:
        return 1.0 if va == vb == 0 else 0.0
    return cov / math.sqrt(va * vb)


def find_duplicate(signature: Sequence[float], trained: Mapping[K, Sequence[float]],
                   threshold: float) -> tuple[K, float] | None:
    """The first already-trained reward whose signature correlates at least ``threshold``."""
    if not signature:
        return None
    for key, other in trained.items():
        rho = spearman(signature, other)
        if rho >= threshold:
            return key, rho
    return None
