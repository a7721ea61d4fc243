"""The designer seam: propose reward candidates for an iteration from the history so far.

Designers read only the history (what was tried, how it trained, the feedback); nothing
downstream calls back into them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

from ..envs.description import EnvDescription
from ..schemas import Candidate, CriticVerdict, IterationRecord
from ..task import TaskSpec


@dataclass(frozen=True)
class DesignRequest:
    task: TaskSpec
    env: EnvDescription
    history: list[IterationRecord]
    iteration: int
    samples: int
    check: Callable[[str], CriticVerdict] | None = None
    """The critic the loop will apply (static check, sandboxed dry run, LLM review), so a
    designer can ask for fixes before handing candidates over; ``None``: static check only."""
    notify: Callable[[str], None] | None = None
    """Where to report what the designer is doing (shown on screen)."""
    starts: dict[str, tuple[float, float, float]] = field(default_factory=dict)
    """Where episodes start, as observed (the 10th, 50th and 90th percentile of each scalar
    variable at the first step of random policies' episodes); empty when nothing was observed."""


class Designer(Protocol):
    name: str

    def propose(self, request: DesignRequest) -> list[Candidate]:
        """Return ``request.samples`` candidates (fewer only if the designer gave up)."""
        ...


def make_designer(model: str, llm=None, **options) -> Designer:
    """``builtin`` for the offline designer; any other name is a litellm model, reached through
    ``llm`` (an :class:`~rewardsmith.llm.client.LLMClient`) or a client made here from ``options``
    (``api_base``, ``max_cost``)."""
    if model == "builtin":
        from .builtin import BuiltinDesigner

        return BuiltinDesigner()
    from ..llm import make_llm
    from .llm import LLMDesigner

    return LLMDesigner(llm or make_llm(model, **options))
