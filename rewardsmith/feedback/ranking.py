"""Orders of an iteration's candidates, as feedback sources build them."""

from __future__ import annotations

from ..schemas import Feedback, IterationRecord, Ranking


def ranked(record: IterationRecord, score) -> list[int]:
    """Indices of the candidates that trained, best first by ``score``."""
    ok = [c for c in record.candidates if c.status == "ok" and c.fitness is not None]
    return [c.index for c in sorted(ok, key=score, reverse=True)]


def feedback_from_order(record: IterationRecord, kind: str, order: list[int], note: str) -> Feedback:
    return Feedback(iteration=record.iteration, kind=kind, best=order[0] if order else None,
                    worst=order[-1] if len(order) > 1 else None, order=order, note=note)


def ranking_feedback(ranking: Ranking) -> Feedback:
    """A person's saved ranking as the feedback the designer reads."""
    order = ranking.order or [i for i in (ranking.best, ranking.worst) if i is not None]
    return Feedback(iteration=ranking.iteration, kind="human", best=ranking.best, worst=ranking.worst,
                    order=order, note=f"ranked by a person at {ranking.time}")
