"""Evaluate a policy with the task's fitness. Needs no reward function, by design."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

import torch

from ..expressions import FitnessProgram
from ..fitness import FitnessTracker
from ..schemas import EvalSummary, Stats
from .policy import Policy

if TYPE_CHECKING:
    from .record import RandomPolicy


class FitnessNotFinite(ValueError):
    """The task's fitness expression gave inf or NaN for an episode (a division by zero, say):
    the evaluation failed; it never counts as a success."""


def _stats(values: torch.Tensor) -> Stats:
    values = values.double()
    return Stats(mean=float(values.mean()), std=float(values.std(unbiased=False)),
                 min=float(values.min()), max=float(values.max()))


# inference mode, not only no_grad: nothing made here is ever trained on, and each op costs less
# (a CartPole policy step and env step ~20% less here)
@torch.inference_mode()
def evaluate_policy(policy: Policy | RandomPolicy, env, program: FitnessProgram, success_threshold: float,
                    deterministic: bool = True, variables: bool = True, on_step=None,
                    fitness_out: list | None = None, on_reset=None) -> EvalSummary:
    """Run one episode in each of ``env.num_envs`` envs and score each with the fitness.

    Also summarises what the policy did: why the episodes ended and, unless ``variables`` is
    false (a quicker check during training), mean/min/max of each scalar state variable.
    ``on_step(step, active)`` sees every step with the envs still in their first episode before
    it (a :class:`~rewardsmith.train.record.EpisodeRecorder`); ``on_reset()`` is called once the
    envs are reset, before the first step; ``fitness_out`` receives the per-episode fitness tensor.
    """
    start = time.perf_counter()
    d = env.description
    tracker = FitnessTracker(program, env.num_envs, env.max_episode_steps, d.terminations,
                             d.variable_names, env.device, env.dtype)
    scalar_vars = [v.name for v in d.variables if v.shape == ()] if variables else []
    var_sum = torch.zeros(len(scalar_vars), device=env.device, dtype=torch.float64)
    var_sq = torch.zeros_like(var_sum)
    var_min = torch.full_like(var_sum, float("inf"))
    var_max = torch.full_like(var_sum, float("-inf"))
    steps = torch.zeros((), device=env.device, dtype=torch.float64)
    # envs still in their first episode (kept here: asking the tracker every step would make it
    # fold its buffer every step)
    active = torch.ones(env.num_envs, device=env.device, dtype=torch.bool)
    obs = env.reset()
    if on_reset is not None:
        on_reset()
    for t in range(env.max_episode_steps):
        step = env.step(policy.act(obs, deterministic=deterministic))
        if on_step is not None:
            on_step(step, active)
        if scalar_vars:
            x = torch.stack([step.variables[n] for n in scalar_vars]).double()  # (V, n)
            m = active.double()
            var_sum += (x * m).sum(1)
            var_sq += (x.square() * m).sum(1)
            var_min = torch.minimum(var_min, torch.where(active, x, float("inf")).amin(1))
            var_max = torch.maximum(var_max, torch.where(active, x, float("-inf")).amax(1))
            steps += m.sum()
        tracker.update(step.variables, step.action, step.terminated, step.truncated)
        active &= ~(step.terminated | step.truncated)
        obs = step.obs
        if t % 32 == 31 and not bool(active.any()):
            break
    per_episode = tracker.first_fitness
    finite = torch.isfinite(per_episode)
    if not bool(finite.all()):
        bad = per_episode[~finite]
        raise FitnessNotFinite(f"the task's fitness is {float(bad[0])} in {bad.numel()} of {per_episode.numel()} "
                               "evaluation episodes (a division by zero in fitness.expression?); it must be a finite "
                               "number")
    if fitness_out is not None:
        fitness_out.append(per_episode.detach().cpu())
    fitness = float(per_episode.double().mean())
    per_variable: dict[str, Stats] = {}
    if scalar_vars and float(steps) > 0:
        mean = var_sum / steps
        std = torch.sqrt(torch.clamp(var_sq / steps - mean.square(), min=0))
        for i, name in enumerate(scalar_vars):
            per_variable[name] = Stats(mean=float(mean[i]), std=float(std[i]),
                                    min=float(var_min[i]), max=float(var_max[i]))
    return EvalSummary(
        fitness=fitness,
        success=fitness >= success_threshold,
        episodes=env.num_envs,
        fitness_per_episode=[round(v, 6) for v in per_episode.tolist()],
        episode_length=_stats(tracker.first_length),
        terminations=tracker.first_episode_reasons(),
        variables=per_variable,
        wall_s=time.perf_counter() - start,
    )
