"""The LLM reward critic (Auto MC-Reward): reviews a candidate against the task before training.

It looks for semantic mistakes the static check and the dry run cannot see (a wrong sign, unit
confusion, an ignored variable, a term the policy can game) and may veto the candidate. Its
verdict and reasons are stored with the candidate (``critic.json``).

>>> parse_review('{"verdict": "reject", "reasons": ["rewards the pole for falling"]}').reason
'rewards the pole for falling'
>>> parse_review('Looks fine.\\n```json\\n{"verdict": "accept", "reasons": []}\\n```').ok
True
"""

from __future__ import annotations

import json
import re

from ..envs.description import EnvDescription
from ..llm.client import LLMClient
from ..prompting import render
from ..schemas import CheckReport, CriticVerdict, LLMRequest
from ..task import TaskSpec

JSON_OBJECT = re.compile(r"\{.*\}", re.S)


def parse_review(text: str) -> CriticVerdict:
    """The critic's answer as a verdict; an answer it cannot read does not veto."""
    data = None
    for match in [JSON_OBJECT.search(block) for block in re.findall(r"```(?:json)?\s*(.*?)```", text, re.S)] + [
            JSON_OBJECT.search(text)]:
        if match is None:
            continue
        try:
            data = json.loads(match.group(0))
            break
        except ValueError:
            continue
    if isinstance(data, dict) and isinstance(data.get("verdict"), str):
        reasons = data.get("reasons") or []
        reasons = [str(r).strip() for r in (reasons if isinstance(reasons, list) else [reasons]) if str(r).strip()]
        if data["verdict"].strip().lower().startswith("rej"):
            return CriticVerdict(ok=False, stage="llm", reason="; ".join(reasons) or "rejected by the LLM critic")
        return CriticVerdict(ok=True, stage="llm", warnings=tuple(f"LLM critic: {r}" for r in reasons))
    return CriticVerdict(ok=True, stage="llm", warnings=("LLM critic: its answer could not be read; no veto",))


class LLMCritic:
    def __init__(self, client: LLMClient):
        self.client = client

    def review(self, code: str, task: TaskSpec, env: EnvDescription, report: CheckReport) -> CriticVerdict:
        sig = report.signature or [0.0]
        user = render("critic", task_description=task.description.strip(), env_description=env.to_text(),
                      code=code.strip(), components=", ".join(report.components) or "(none)",
                      total_min=f"{min(sig):.4g}", total_max=f"{max(sig):.4g}", total_mean=f"{sum(sig) / len(sig):.4g}")
        request = LLMRequest.chat(("system", render("critic_system")), ("user", user), temperature=0.0)
        answer = self.client.complete(request, purpose="critic")[0]
        verdict = parse_review(answer.text)
        return verdict.model_copy(update={"warnings": verdict.warnings + ((f"LLM critic answer: {answer.log}",)
                                                                          if answer.log else ())})
