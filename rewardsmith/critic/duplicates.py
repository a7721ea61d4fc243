"""Spot a reward that is nearly the same as one already trained, before paying for training.

Two rewards are compared on the same batch of states (the dry run's signature: the total reward
on a fixed, seeded random rollout). They count as the same when they order those states almost
identically (Spearman rank correlation at or above a threshold) *and* are almost linearly related
(Pearson correlation at or above the same threshold): rewards equal up to scale and offset.

Rank correlation alone is not enough: any monotone reshaping of a reward (a sharper or wider
temperature, a power) keeps every rank, yet trains differently, and trying such reshapings is
exactly how a designer refines a reward.

>>> round(spearman([1.0, 2.0, 3.0, 4.0], [10.0, 20.0, 30.0, 45.0]), 6)
1.0
>>> round(spearman([1.0, 2.0, 3.0, 4.0], [4.0, 3.0, 2.0, 1.0]), 6)
-1.0
>>> round(similarity([0.0, 1.0, 2.0, 3.0], [1.0, 3.0, 5.0, 7.0]), 6)  # 2x + 1: the same reward for PPO
1.0
>>> round(similarity([0.0, 1.0, 2.0, 3.0], [0.0, 1.0, 4.0, 9.0]), 3)  # same order, other shape
0.958
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TypeVar

import numpy as np

K = TypeVar("K")


def _ranks(values: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing their average rank."""
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(1, len(values) + 1)
    _, inverse = np.unique(values, return_inverse=True)
    sums = np.bincount(inverse, weights=ranks)
    counts = np.bincount(inverse)
    return (sums / counts)[inverse]


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; two constant sequences count as identical (1.0), one as 0.0."""
    sa, sb = a.std(), b.std()
    if sa == 0 or sb == 0:
        return 1.0 if sa == sb == 0 else 0.0
    return float(np.mean((a - a.mean()) * (b - b.mean())) / (sa * sb))


def spearman(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """Spearman rank correlation of two equally long sequences (0.0 if they differ in length)."""
    if len(a) != len(b) or not len(a):
        return 0.0
    return _pearson(_ranks(np.asarray(a, dtype=float)), _ranks(np.asarray(b, dtype=float)))


def similarity(a: Sequence[float] | np.ndarray, b: Sequence[float] | np.ndarray) -> float:
    """The smaller of the rank and the linear correlation: 1.0 only for the same reward up to
    scale and offset."""
    if len(a) != len(b) or not len(a):
        return 0.0
    return min(spearman(a, b), _pearson(np.asarray(a, dtype=float), np.asarray(b, dtype=float)))


def compact(signature: Sequence[float]) -> np.ndarray:
    """A signature as kept for the whole solve: 4 bytes per state instead of a Python float's 32."""
    return np.asarray(signature, dtype=np.float32)


def find_duplicate(signature: Sequence[float], trained: Mapping[K, Sequence[float] | np.ndarray],
                   threshold: float) -> tuple[K, float] | None:
    """The first already-trained reward whose similarity is at least ``threshold``."""
    if not len(signature):
        return None
    for key, other in trained.items():
        rho = similarity(signature, other)
        if rho >= threshold:
            return key, rho
    return None
