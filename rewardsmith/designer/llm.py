"""The LLM designer (Eureka, Text2Reward): K reward candidates per iteration from a language model.

One request asks for K answers (``n=K`` where the provider supports it, K parallel requests
otherwise). Each answer's code is extracted and put through the loop's critic (static check,
sandboxed dry run, optional LLM review); an answer without code or with rejected code gets a
follow-up in the same conversation that quotes the error, up to ``fix_rounds`` times. Candidates
that still fail are handed over too, so the run records them as rejected with their reason.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from ..contract import ENTRY_POINT
from ..critic.static import static_check
from ..llm.client import Answer, LLMClient
from ..schemas import Candidate, CriticVerdict, LLMRequest, LLMUsage
from . import DesignRequest
from .context import HISTORY_DEPTH, design_messages, fix_prompt
from .extract import extract_code

NO_CODE = (f"the answer contains no Python code that defines {ENTRY_POINT}(...); put the complete function "
           "in a single ```python block")


@dataclass
class _Sample:
    """One of the K answers and its conversation, as it goes through fixes."""

    index: int
    conversation: list[tuple[str, str]]
    answer: Answer
    code: str | None = None
    verdict: CriticVerdict | None = None
    attempts: list[dict] = field(default_factory=list)  # earlier answers and why they failed

    @property
    def judged(self) -> CriticVerdict:
        assert self.verdict is not None, "read before it was judged"
        return self.verdict


class LLMDesigner:
    def __init__(self, client: LLMClient, history_depth: int = HISTORY_DEPTH, fix_rounds: int = 2,
                 temperature: float | None = 1.0, parallel: int = 4):
        self.client = client
        self.name = client.model
        self.history_depth, self.fix_rounds = history_depth, fix_rounds
        self.temperature, self.parallel = temperature, parallel

    def usage(self) -> LLMUsage:
        return self.client.usage

    def propose(self, request: DesignRequest) -> list[Candidate]:
        check = request.check or (lambda code: static_check(code, request.env.reward_arguments))
        notify = request.notify or (lambda text: None)
        messages = design_messages(request, self.history_depth)
        notify(f"designer: asking {self.client.model} for {request.samples} rewards (iteration {request.iteration + 1})")
        answers = self.client.complete(LLMRequest.chat(*messages, temperature=self.temperature),
                                       n=request.samples, purpose=f"design iteration {request.iteration + 1}")
        samples = [_Sample(i, messages, a) for i, a in enumerate(answers[:request.samples])]

        for round_ in range(self.fix_rounds + 1):
            self._map(lambda s: self._judge(s, check), [s for s in samples if s.verdict is None])
            failed = [s for s in samples if not s.judged.ok]
            if not failed or round_ == self.fix_rounds:
                break
            for s in failed:
                notify(f"  designer: answer {s.index} {s.judged.stage} check failed ({s.judged.reason}); "
                       "asking for a fix")
            self._map(lambda s: self._ask_fix(s, request), failed)

        return [Candidate(iteration=request.iteration, index=s.index, code=s.code or "",
                          origin={"designer": "llm", "model": self.client.model, "answer": s.answer.log,
                                  "attempts": s.attempts,
                                  **({"error": s.judged.reason} if not s.judged.ok else {})})
                for s in samples]

    def _judge(self, sample: _Sample, check) -> None:
        sample.code = extract_code(sample.answer.text)
        if sample.code is None:
            sample.verdict = CriticVerdict(ok=False, stage="static", reason=NO_CODE)
        else:
            sample.verdict = check(sample.code)

    def _ask_fix(self, sample: _Sample, request: DesignRequest) -> None:
        error = sample.judged.reason or "it was rejected"
        sample.attempts.append({"answer": sample.answer.log, "stage": sample.judged.stage, "reason": error})
        sample.conversation = [*sample.conversation, ("assistant", sample.answer.text),
                               ("user", fix_prompt(error, request.env))]
        fix = LLMRequest.chat(*sample.conversation, temperature=self.temperature)
        # the sample number keeps two identical conversations from sharing one cached answer
        reply, log = self.client.ask(fix, purpose=f"fix iteration {request.iteration + 1} answer {sample.index}",
                                     sample=sample.index)
        sample.answer = Answer(reply.texts[0] if reply.texts else "", log)
        sample.code, sample.verdict = None, None

    def _map(self, fn, items: list) -> None:
        if len(items) <= 1:
            for item in items:
                fn(item)
            return
        with ThreadPoolExecutor(max_workers=min(self.parallel, len(items))) as pool:
            list(pool.map(fn, items))
