"""Orders of an iteration's candidates, as feedback sources build them."""

from __future__ import annotations

from ..runs import RunDir
from ..schemas import Feedback, IterationRecord, Ranking


def ranked(record: IterationRecord, score) -> list[int]:
    """Indices of the candidates that trained, best first by ``score``."""
    ok = [c for c in record.candidates if c.status == "ok" and c.fitness is not None]
    return [c.index for c in sorted(ok, key=score, reverse=True)]


def feedback_from_order(record: IterationRecord, kind: str, order: list[int], note: str) -> Feedback:
    return Feedback(iteration=record.iteration, kind=kind, best=order[0] if order else None,
                    worst=order[-1] if len(order) > 1 else None, order=order, note=note)


def ranking_feedback(ranking: Ranking) -> Feedback:
    """A saved ranking (a person's or a VLM's) as the feedback the designer reads."""
    order = ranking.order or [i for i in (ranking.best, ranking.worst) if i is not None]
    by = f"a vision-language model ({ranking.model})" if ranking.judge == "vlm" else "a person"
    return Feedback(iteration=ranking.iteration, kind="vlm" if ranking.judge == "vlm" else "human",
                    best=ranking.best, worst=ranking.worst, order=order, note=f"ranked by {by} at {ranking.time}",
                    reasons=ranking.reasons)


def named(ranking: Ranking) -> set[int]:
    """The candidates a ranking names."""
    return {ranking.best, *ranking.order} | ({ranking.worst} if ranking.worst is not None else set())


def person_overrules(run: RunDir, record: IterationRecord) -> Feedback | None:
    """The feedback of a person's ranking of ``record``'s iteration when it differs from the
    judgement the iteration got (a VLM's, or the person's own earlier one): their latest ranking
    wins. ``None`` when there is none, or for metric and synthetic feedback."""
    if record.feedback is None or record.feedback.kind not in ("human", "vlm"):
        return None
    ranking = run.latest_ranking(record.iteration, judge="person")
    trained = {c.index for c in record.candidates if c.status == "ok"}
    if ranking is None or not named(ranking) <= trained:
        return None
    feedback = ranking_feedback(ranking)
    return None if feedback == record.feedback else feedback
