"""The analyzer: turn a trained candidate into feedback a designer can act on.

:mod:`.findings` computes Eureka's reward reflection (per-component statistics over training,
the fitness curve, why episodes ended) and flags components that are constant, dominate, or rise
without the fitness; :mod:`.llm` is the LLM trajectory analyzer (Auto MC-Reward), which writes
an account of what the policy did. :func:`result_of` is where a job's outcome becomes a
candidate's result, for ``solve`` and ``train`` alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..schemas import CandidateResult, CriticVerdict
from .findings import analyze, describe, find_issues

if TYPE_CHECKING:
    from ..runners.jobs import JobOutcome

__all__ = ["analyze", "describe", "find_issues", "result_of"]


def result_of(outcome: JobOutcome, success_threshold: float, *, iteration: int, index: int, reward_file: str,
              code: str, origin: dict | None = None, critic: CriticVerdict | None = None) -> CandidateResult:
    """A trained (or failed) candidate's result: the job's outcome with the analysis of it."""
    return CandidateResult(
        iteration=iteration, index=index, status=outcome.status, reason=outcome.reason, reward_file=reward_file,
        code=code, origin=origin or {}, critic=critic, sandbox=outcome.sandbox, train=outcome.train,
        eval=outcome.eval, fitness=outcome.eval.fitness if outcome.eval else None,
        success=bool(outcome.eval and outcome.eval.success), wall_s=outcome.wall_s,
        runs_as=outcome.runs_as, torchscript_error=outcome.torchscript_error,
        analysis=analyze(outcome.train, outcome.eval, success_threshold, outcome.status, outcome.reason))
