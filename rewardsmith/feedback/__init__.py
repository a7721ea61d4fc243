"""The feedback seam: judge an iteration's candidates (best, worst, order) for the designer.

- ``metric`` (:mod:`.metric`): by the task's fitness (ground truth).
- ``synthetic`` (:mod:`.synthetic`): by fitness plus Gaussian noise, a stand-in for a person.
- ``human`` (:mod:`.human`): a person ranks the candidates in the terminal UI (``rewardsmith rank``).
- ``vlm`` (:mod:`.vlm`): a vision-language model ranks them from frames of their recorded episodes.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from ..errors import RewardsmithError
from ..schemas import Feedback, IterationRecord
from ..task import TaskSpec
from .human import HumanFeedback
from .metric import MetricFeedback
from .ranking import ranking_feedback
from .synthetic import SyntheticFeedback

__all__ = ["FEEDBACKS", "FeedbackSource", "HumanFeedback", "MetricFeedback", "SyntheticFeedback", "make_feedback",
           "ranking_feedback"]

if TYPE_CHECKING:
    from ..llm.client import LLMClient


class FeedbackSource(Protocol):
    kind: str

    def judge(self, record: IterationRecord, task: TaskSpec) -> Feedback: ...


FEEDBACKS = ("metric", "human", "synthetic", "vlm")


def make_feedback(kind: str, run_path: Path | None = None, noise: float | None = None, seed: int = 0,
                  interactive: bool | None = None, vlm: LLMClient | None = None) -> FeedbackSource:
    """``metric``; ``synthetic`` (``noise``: std as a fraction of the success threshold, default
    0.1; ``seed`` for its draws); ``human`` (needs the run directory, where rankings are kept;
    ``interactive`` overrides the terminal check); ``vlm`` (the run directory and the model's
    client, checked with :func:`.vlm.check_vision`)."""
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
    if kind == "vlm":
        if run_path is None or vlm is None:
            raise ValueError("vlm feedback needs the run directory and the model's client")
        from .vlm import VLMFeedback

        return VLMFeedback(vlm, run_path)
    raise RewardsmithError(f"unknown feedback {kind!r} (known: {', '.join(FEEDBACKS)})")
