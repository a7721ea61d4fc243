"""The designer seam: propose reward candidates for an iteration from the history so far.

Designers read only the history (what was tried, how it trained, the feedback); nothing
downstream calls back into them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from ..envs.description import EnvDescription
from ..schemas import Candidate, IterationRecord
from ..task import TaskSpec


@dataclass(frozen=True)
class DesignRequest:
    task: TaskSpec
    env: EnvDescription
    history: list[IterationRecord]
    iteration: int
    samples: int


class Designer(Protocol):
    name: str

    def propose(self, request: DesignRequest) -> list[Candidate]:
        """Return ``request.samples`` candidates (fewer only if the designer gave up)."""
        ...


def make_designer(model: str, **options) -> Designer:
    """``builtin`` for the offline designer; any other name is a litellm model."""
    if model == "builtin":
        from .builtin import BuiltinDesigner

        return BuiltinDesigner()
    from ..errors import LLMError

    raise LLMError(f"model {model!r}: LLM designers are not available yet; use --model builtin")
