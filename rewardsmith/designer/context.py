"""What an LLM designer is shown: the prompts, filled from the task, the env and the history.

- Iteration 1 (``initial``): the task, the env's named description, the reward contract.
- Later iterations under metric feedback (``refinement``, Eureka's reward reflection): every
  candidate's outcome, and the best rewards of the last few iterations with their
  per-component statistics over training, task fitness, episode lengths, the analyzer's
  findings and the trajectory analyzer's account of the policy's behaviour.
- Later iterations under human, vlm or synthetic feedback (``preference``, ICPL): the preferred
  and least preferred rewards with their component traces, the judge's words on each policy (a
  VLM's reasons), the chosen rewards of earlier iterations as a chain of diffs; no task fitness
  anywhere, since the judge judged without it.
"""

from __future__ import annotations

import difflib

from ..analyzer import describe
from ..envs.description import EnvDescription
from ..prompting import render
from ..schemas import CandidateResult, Feedback, IterationRecord
from . import DesignRequest

SCREENED_NOTE = ("(Screening: before training, each reward was scored on recorded episodes whose task fitness "
                 "is known; a reward whose returns rank those episodes the wrong way round, or that gives "
                 "every episode the same return, is not trained. Do not repeat what made those rewards fail.)")
HISTORY_DEPTH = 3      # iterations whose best reward stays in the prompt
PREFERENCE_CHAIN = 5   # chosen rewards shown as a chain of diffs


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3g}"


def example_code(env: EnvDescription) -> str:
    """A reward in the contract's form over this env's own names (shapes handled correctly): plain
    Python that TorchScript compiles too, with a helper whose number parameter is annotated."""
    lines = ["import torch", "", "",
             "def closeness(distance: torch.Tensor, scale: float) -> torch.Tensor:",
             '    """1 at distance 0, falling towards 0 as the distance grows past scale."""',
             "    return torch.exp(-distance / scale)", "", ""]
    chosen = list(env.variables[:2])
    args = ", ".join(f"{v.name}: torch.Tensor" for v in chosen)
    lines.append(f"def compute_reward({args}, action: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:")
    names = []
    for v in chosen:
        size = f"torch.linalg.vector_norm({v.name}, dim=-1)" if v.shape else f"{v.name}.abs()"
        term = f"{v.name}_term"
        lines.append(f"    {term} = closeness({size}, 0.5)")
        names.append(term)
    lines.append("    effort = torch.square(action).reshape(action.shape[0], -1).sum(dim=-1)")
    lines.append(f"    total = {' + '.join(names)} - 0.01 * effort")
    parts = ", ".join(f'"{n}": {n}' for n in [*names, "effort"])
    lines.append(f"    return total, {{{parts}}}")
    return "\n".join(lines)


def system_prompt(env: EnvDescription) -> str:
    return render("system", example_code=example_code(env))


def fix_prompt(error: str, env: EnvDescription) -> str:
    """The regeneration request: the error, quoted, and the contract's essentials."""
    hint = (f"compute_reward may take only these arguments: {', '.join(env.reward_arguments)}. The total "
            "and every component must be float tensors of shape (num_envs,), one value per env, with finite "
            "values: reduce vector quantities over their last dimension (for example .sum(dim=-1)).")
    return render("error_feedback", error=error, hint=hint)


def design_messages(request: DesignRequest, depth: int = HISTORY_DEPTH) -> list[tuple[str, str]]:
    """The system and user messages for this iteration's first request."""
    common = {"task_description": request.task.description.strip(), "env_description": request.env.to_text()}
    history = request.history
    last = history[-1] if history else None
    preference = last is not None and last.feedback is not None and last.feedback.kind != "metric"
    if last is None:
        user = render("initial", **common)
    elif preference and _chosen(last) is not None:
        user = preference_prompt(request, common)
    elif preference:  # nothing to choose from last time: start again, with the person's earlier choices
        user = "\n\n".join(part.strip() for part in (render("initial", **common), _problems(last, show_fitness=False),
                                                    _preference_chain(request.history, minimum=1)) if part.strip())
    else:
        user = refinement_prompt(request, common, depth)
    return [("system", system_prompt(request.env)), ("user", user)]


# -- metric feedback ------------------------------------------------------------------------


def refinement_prompt(request: DesignRequest, common: dict, depth: int = HISTORY_DEPTH) -> str:
    last = request.history[-1]
    threshold = request.task.fitness.success_threshold
    table = "\n".join(_candidate_line(c, show_fitness=True) for c in last.candidates) or "(none)"
    bests = [(rec, best) for rec in request.history[-depth:] if (best := _chosen(rec)) is not None]
    if bests:
        blocks = ["The best rewards of the last iterations, oldest first, with what their training showed (each "
                  "component's mean at checkpoints over training, episode lengths, why episodes ended, findings) "
                  "and an analysis of the trained policy's behaviour:"]
        for rec, best in bests:
            blocks.append(f"### Iteration {rec.iteration + 1}, candidate {best.index}: task fitness "
                          f"{_fmt(best.fitness)}\n\n```python\n{best.code.strip()}\n```\n\n"
                          f"{reflection(best, threshold, show_fitness=True)}")
        best_history = "\n\n".join(blocks) + "\n"
    else:
        best_history = "No reward has trained successfully yet; start afresh from the task.\n"
    return render("refinement", **common, iteration=last.iteration + 1, candidate_table=table,
                  threshold_text=f"success means at least {_fmt(threshold)}", best_history=best_history,
                  problems=_problems(last))


# -- preference feedback (ICPL) ---------------------------------------------------------------


def preference_prompt(request: DesignRequest, common: dict) -> str:
    last = request.history[-1]
    threshold = request.task.fitness.success_threshold
    best = _chosen(last)
    assert best is not None and last.feedback is not None  # design_messages asks only then
    worst = _by_index(last, last.feedback.worst)
    worst_section = ""
    if worst is not None and worst.index != best.index:
        worst_section = (f"\n## Least preferred: candidate {worst.index}\n\n```python\n{worst.code.strip()}\n```\n\n"
                         f"What its training showed and what its policy did:\n"
                         f"{reflection(worst, threshold, show_fitness=False)}\n")
    return render("preference", **common, iteration=last.iteration + 1, best_index=best.index,
                  best_code=best.code.strip(), best_traces=reflection(best, threshold, show_fitness=False),
                  worst_section=worst_section, history_section=_preference_chain(request.history),
                  problems=_problems(last, show_fitness=False), judge=_judge(last.feedback),
                  judge_section=_judge_words(last.feedback))


def _judge(feedback: Feedback) -> str:
    if feedback.kind == "vlm":
        return "A vision-language model"
    return "A person"


def _judge_words(feedback: Feedback) -> str:
    """What the judge said about each candidate, best first (a VLM's reasons, or a person's words)."""
    if not feedback.reasons:
        return ""
    order = [i for i in feedback.order if i in feedback.reasons]
    order += [i for i in sorted(feedback.reasons) if i not in order]
    lines = ["\n## What the judge said about each policy, best first"]
    for index in order:
        tag = " (preferred)" if index == feedback.best else " (least preferred)" if index == feedback.worst else ""
        lines.append(f"- candidate {index}{tag}: {feedback.reasons[index]}")
    return "\n".join(lines) + "\n"


def _preference_chain(history: list[IterationRecord], minimum: int = 2) -> str:
    """The person's chosen rewards across iterations, each as a diff from the one before."""
    chosen = [(rec.iteration, best) for rec in history[-PREFERENCE_CHAIN:] if (best := _chosen(rec)) is not None]
    if len(chosen) < minimum:
        return ""
    parts = ["\n## The preferred rewards of the iterations so far, oldest first, each as a change from the one "
             "before"]
    previous = None
    for iteration, best in chosen:
        names = ", ".join(best.component_names) or "-"
        if previous is None:
            parts.append(f"Iteration {iteration + 1}, candidate {best.index} (components: {names}):\n\n"
                         f"```python\n{best.code.strip()}\n```")
        else:
            diff = "\n".join(difflib.unified_diff(previous.code.strip().splitlines(), best.code.strip().splitlines(),
                                                  f"iteration {previous.iteration + 1}", f"iteration {iteration + 1}",
                                                  lineterm="", n=1))
            parts.append(f"Iteration {iteration + 1}, candidate {best.index} (components: {names}), changed "
                         f"from the one before:\n\n```diff\n{diff or '(no change)'}\n```")
        previous = best
    return "\n\n".join(parts) + "\n"


# -- shared pieces ------------------------------------------------------------------------------


def reflection(result: CandidateResult, success_threshold: float, show_fitness: bool) -> str:
    """The analyzer's report of one candidate (without any fitness number if asked), plus the
    trajectory analyzer's account of its policy."""
    analysis = result.analysis
    text = describe(result.train, result.eval, analysis.findings if analysis else [], success_threshold,
                    result.status, result.reason, show_fitness=show_fitness, timings=False)
    if show_fitness and result.eval is not None and result.eval.fitness_per_episode:
        episodes = result.eval.fitness_per_episode
        reached = sum(f >= success_threshold for f in episodes)
        text += f"\nSuccess rate: {reached} of {len(episodes)} evaluation episodes reached the success threshold."
    if analysis is not None and analysis.llm_summary:
        text += f"\nAnalysis of the trained policy's behaviour:\n{analysis.llm_summary.strip()}"
    return text


def _candidate_line(c: CandidateResult, show_fitness: bool) -> str:
    if c.status == "ok":
        if not show_fitness:
            return f"- candidate {c.index}: trained"
        solved = "solved" if c.success else "not solved"
        return f"- candidate {c.index}: task fitness {_fmt(c.fitness)} ({solved})"
    return f"- candidate {c.index}: {c.status}: {c.reason}"


def _problems(record: IterationRecord, show_fitness: bool = True) -> str:
    bad = [c for c in record.candidates if c.status != "ok"]
    if not bad:
        return ""
    lines = [f"Rewards of iteration {record.iteration + 1} that did not train:"]
    lines += [_candidate_line(c, show_fitness) for c in bad]
    if any(c.critic is not None and c.critic.stage == "screen" for c in bad):
        lines.append(SCREENED_NOTE)
    return "\n".join(lines) + "\n"


def _by_index(record: IterationRecord, index: int | None) -> CandidateResult | None:
    if index is None:
        return None
    return next((c for c in record.candidates if c.index == index and c.status == "ok"), None)


def _chosen(record: IterationRecord) -> CandidateResult | None:
    """The candidate the iteration's feedback chose as best."""
    return _by_index(record, record.feedback.best if record.feedback else None)
