"""Streaming, batched evaluation of the task's fitness over episodes, on the env's device.

The tracker is updated once per step with the env's named state; each aggregation in the
fitness expression keeps a running value per env, so nothing is copied to the host until a
caller asks for a summary.
"""

from __future__ import annotations

from collections.abc import Mapping

import torch

from .expressions import FitnessProgram, StepExpression, evaluate, to_float_tensor

_INIT = {"mean": 0.0, "sum": 0.0, "min": float("inf"), "max": float("-inf"), "any": 0.0,
         "all": 1.0, "last": 0.0}


class FitnessTracker:
    """Per-env episode bookkeeping: fitness, length and why each episode ended.

    ``update`` never synchronises with the device. ``pop_interval`` returns (and clears) the
    totals over episodes that ended since the last call; ``first_episode_*`` keep the first
    episode of every env, which is what an evaluation of ``num_envs`` episodes needs.
    """

    def __init__(self, program: FitnessProgram, num_envs: int, max_episode_steps: int,
                 terminations: Mapping[str, str], variable_names: list[str],
                 device: torch.device, dtype: torch.dtype = torch.float32):
        self.program = program
        self.max_episode_steps = float(max_episode_steps)
        self.reasons = list(terminations)
        self.termination_exprs = [StepExpression(t, set(variable_names), where=f"termination {n}")
                                  for n, t in terminations.items()]
        z = lambda: torch.zeros(num_envs, device=device, dtype=dtype)  # noqa: E731
        self.acc = [torch.full((num_envs,), _INIT[a.kind], device=device, dtype=dtype)
                    for a in program.aggregations]
        self.length = z()
        # interval totals (since the last pop)
        self.fit_sum = torch.zeros((), device=device, dtype=torch.float64)
        self.len_sum = torch.zeros((), device=device, dtype=torch.float64)
        self.episodes = torch.zeros((), device=device, dtype=torch.long)
        self.reason_counts = torch.zeros(len(self.reasons) + 2, device=device, dtype=torch.long)
        # first episode of each env
        self.finished = torch.zeros(num_envs, device=device, dtype=torch.bool)
        self.first_fitness = z()
        self.first_length = z()
        self.first_reason = torch.zeros(num_envs, device=device, dtype=torch.long)

    def update(self, variables: Mapping[str, torch.Tensor], action: torch.Tensor,
               terminated: torch.Tensor, truncated: torch.Tensor) -> None:
        values = {**variables, "action": action}
        like = self.length
        for i, agg in enumerate(self.program.aggregations):
            v = to_float_tensor(evaluate(agg.step, values), like)
            a = self.acc[i]
            if agg.kind in ("mean", "sum"):
                self.acc[i] = a + v
            elif agg.kind in ("min", "all"):
                self.acc[i] = torch.minimum(a, v if agg.kind == "min" else (v != 0).to(v.dtype))
            elif agg.kind in ("max", "any"):
                self.acc[i] = torch.maximum(a, v if agg.kind == "max" else (v != 0).to(v.dtype))
            else:  # last
                self.acc[i] = v
        self.length = self.length + 1
        done = terminated | truncated
        slots = {"episode_length": self.length, "max_episode_steps": self.max_episode_steps,
                 "terminated": terminated.to(like.dtype), "truncated": truncated.to(like.dtype)}
        for agg, a in zip(self.program.aggregations, self.acc):
            slots[agg.slot] = a / self.length if agg.kind == "mean" else a
        fitness = to_float_tensor(self.program.episode_value(slots), like)

        done_f = done.to(like.dtype)
        self.fit_sum += (fitness * done_f).sum()
        self.len_sum += (self.length * done_f).sum()
        self.episodes += done.sum()
        code = self._reason_codes(values, terminated, truncated)
        self.reason_counts.scatter_add_(0, code, done.long())

        first = done & ~self.finished
        self.first_fitness = torch.where(first, fitness, self.first_fitness)
        self.first_length = torch.where(first, self.length, self.first_length)
        self.first_reason = torch.where(first, code, self.first_reason)
        self.finished |= done

        for i, agg in enumerate(self.program.aggregations):
            self.acc[i] = torch.where(done, torch.full_like(self.acc[i], _INIT[agg.kind]), self.acc[i])
        self.length = torch.where(done, torch.zeros_like(self.length), self.length)

    def _reason_codes(self, values, terminated, truncated) -> torch.Tensor:
        """Per env: index into ``reason_names()`` of why its episode ends now (0 when not ending)."""
        other = len(self.reasons)
        code = torch.full_like(terminated, other, dtype=torch.long)
        # the first matching named reason wins, so walk them in reverse
        for i in reversed(range(len(self.termination_exprs))):
            code = torch.where(self.termination_exprs[i](values) != 0, i, code)
        code = torch.where(truncated, other + 1, code)
        return torch.where(terminated | truncated, code, 0)

    def reason_names(self) -> list[str]:
        return [*self.reasons, "other_termination", "time_limit"]

    def first_episode_reasons(self) -> dict[str, int]:
        """Why the first episode of each env ended, counted by reason."""
        counts = torch.bincount(self.first_reason[self.finished], minlength=len(self.reason_names()))
        return {n: c for n, c in zip(self.reason_names(), counts.tolist()) if c}

    def pop_interval(self) -> dict:
        """Host-side totals over episodes that ended since the last call, then reset them."""
        episodes = int(self.episodes)
        counts = self.reason_counts.tolist()
        out = {
            "episodes": episodes,
            "fitness": float(self.fit_sum) / episodes if episodes else None,
            "episode_length": float(self.len_sum) / episodes if episodes else None,
            "terminations": {n: c for n, c in zip(self.reason_names(), counts) if c},
        }
        self.fit_sum.zero_()
        self.len_sum.zero_()
        self.episodes.zero_()
        self.reason_counts.zero_()
        return out
