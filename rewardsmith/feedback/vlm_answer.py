"""Read a vision-language model's ranking out of its answer, or say exactly what is wrong with it.

The model is asked for one JSON object (``best``, ``worst``, an optional full ``order``, and
``reasons``: a sentence per candidate). Answers come wrapped in prose or code fences, with
candidates as ``3``, ``"3"`` or ``"candidate 3"``, reasons as a mapping or a list; all of that
is read. What cannot be read as one consistent ranking of the candidates shown raises
:class:`AnswerProblem` with a sentence that the follow-up request quotes.

>>> parse_verdict('Here: {"best": "candidate 3", "worst": 0, "reasons": {"3": "stays up.", "0": "falls."}}',
...               [0, 1, 3])
Verdict(best=3, worst=0, order=[], reasons={3: 'stays up.', 0: 'falls.'})
>>> parse_verdict('{"best": 1, "worst": 1}', [0, 1])
Traceback (most recent call last):
...
rewardsmith.feedback.vlm_answer.AnswerProblem: "best" and "worst" are both candidate 1; they must differ
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

MAX_REASON = 400
FENCE = re.compile(r"```(?:json|JSON)?\s*\n(.*?)```", re.S)
NUMBER = re.compile(r"^\s*(?:candidate\s*)?#?\s*(\d+)\s*$", re.I)


class AnswerProblem(ValueError):
    """What is wrong with an answer, in one sentence the model can act on."""


@dataclass(frozen=True)
class Verdict:
    best: int
    worst: int
    order: list[int] = field(default_factory=list)
    reasons: dict[int, str] = field(default_factory=dict)


def _objects(text: str) -> list[dict]:
    """The JSON objects in ``text`` that are not inside another, in order."""
    decoder = json.JSONDecoder()
    found, position = [], 0
    while (start := text.find("{", position)) != -1:
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            position = start + 1
            continue
        if isinstance(value, dict):
            found.append(value)
        position = end
    return found


def _json_object(text: str) -> dict:
    """The answer's ranking object: in a fenced block first, else anywhere in the text; the first
    that names a ranking key, else the first."""
    objects = [o for block in FENCE.findall(text) for o in _objects(block)] or _objects(text)
    if not objects:
        raise AnswerProblem("it contains no JSON object; answer with one object with the keys \"best\", "
                            "\"worst\", \"order\" and \"reasons\"")
    lowered = [{str(k).strip().lower(): v for k, v in o.items()} for o in objects]
    return next((o for o in lowered if {"best", "worst", "order"} & o.keys()), lowered[0])


def _candidate(value, what: str, shown: list[int]) -> int:
    number: int | None = None
    if isinstance(value, bool):
        number = None
    elif isinstance(value, int):
        number = value
    elif isinstance(value, float) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and (match := NUMBER.match(value)):
        number = int(match.group(1))
    if number is None:
        raise AnswerProblem(f"{what} is {json.dumps(value)}, not a candidate number")
    if number not in shown:
        raise AnswerProblem(f"{what} names candidate {number}, which was not shown (the candidates are "
                            f"{_listed(shown)})")
    return number


def _listed(numbers: list[int]) -> str:
    return ", ".join(map(str, numbers))


def _reason(value) -> str:
    if not isinstance(value, str):
        raise AnswerProblem(f"a reason must be a sentence of text, not {json.dumps(value)[:60]}")
    text = " ".join(value.split())
    return text if len(text) <= MAX_REASON else text[:MAX_REASON - 1] + "…"


def _reasons(value, shown: list[int]) -> dict[int, str]:
    if value is None:
        return {}
    pairs: list[tuple[object, object]]
    if isinstance(value, dict):
        pairs = list(value.items())
    elif isinstance(value, list) and all(isinstance(item, dict) for item in value):
        pairs = [(item.get("candidate"), item.get("reason")) for item in value]
    else:
        raise AnswerProblem("\"reasons\" must map each candidate to a sentence, like {\"3\": \"...\"}")
    return {_candidate(key, '"reasons"', shown): _reason(text) for key, text in pairs}


def parse_verdict(text: str, shown: list[int]) -> Verdict:
    """The ranking in ``text`` of the candidates ``shown``; :class:`AnswerProblem` if there is none."""
    data = _json_object(text)
    raw_order = data.get("order")
    if raw_order is not None and not isinstance(raw_order, list):
        raise AnswerProblem("\"order\" must be a list of candidate numbers, best first")
    order = [_candidate(v, '"order"', shown) for v in raw_order or []]
    if order:
        twice = next((i for i in order if order.count(i) > 1), None)
        if twice is not None:
            raise AnswerProblem(f"\"order\" lists candidate {twice} more than once")
        left_out = [i for i in shown if i not in order]
        if left_out:
            raise AnswerProblem(f"\"order\" leaves out candidate {_listed(left_out)}; list every candidate once")
    best = _candidate(data["best"], '"best"', shown) if data.get("best") is not None else None
    worst = _candidate(data["worst"], '"worst"', shown) if data.get("worst") is not None else None
    best = order[0] if best is None and order else best
    worst = order[-1] if worst is None and order else worst
    if best is None or worst is None:
        raise AnswerProblem(f"it names no {'best' if best is None else 'worst'} candidate (give \"best\" and "
                            "\"worst\")")
    if best == worst:
        raise AnswerProblem(f"\"best\" and \"worst\" are both candidate {best}; they must differ")
    if order and (order[0], order[-1]) != (best, worst):
        raise AnswerProblem(f"\"order\" runs from {order[0]} to {order[-1]}, but \"best\" is {best} and "
                            f"\"worst\" is {worst}")
    reasons = _reasons(data.get("reasons"), shown)
    missing = [i for i in (best, worst) if not reasons.get(i)]
    if missing:
        raise AnswerProblem(f"\"reasons\" has no sentence for candidate {missing[0]} (the "
                            f"{'best' if missing[0] == best else 'worst'}); give one for every candidate")
    return Verdict(best=best, worst=worst, order=order, reasons=reasons)
