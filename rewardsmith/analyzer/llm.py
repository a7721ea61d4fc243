"""The LLM trajectory analyzer (Auto MC-Reward): what a trained policy did, and why.

From a candidate's evaluation (episode lengths, why episodes ended, the state variables over
the episodes) and its training record (each reward component over training), the model writes a
short account of the policy's behaviour, the causes of its failures and changes to the reward.
Under preference feedback it never sees the task fitness, so neither does the designer.
"""

from __future__ import annotations

from ..envs.description import EnvDescription
from ..llm.client import LLMClient
from ..prompting import render
from ..schemas import CandidateResult, LLMRequest
from ..task import TaskSpec
from .findings import describe


class TrajectoryAnalyzer:
    def __init__(self, client: LLMClient):
        self.client = client

    def explain(self, result: CandidateResult, task: TaskSpec, env: EnvDescription, show_fitness: bool = True) -> str:
        findings = result.analysis.findings if result.analysis else []
        record = describe(result.train, result.eval, findings, task.fitness.success_threshold, result.status,
                          result.reason, show_fitness=show_fitness, timings=False)
        user = render("analyzer", task_description=task.description.strip(), env_description=env.to_text(),
                      code=result.code.strip(), record=record)
        request = LLMRequest.chat(("system", render("analyzer_system")), ("user", user), temperature=0.0)
        purpose = f"analyze iteration {result.iteration + 1} candidate {result.index}"
        return self.client.complete(request, purpose=purpose)[0].text.strip()
