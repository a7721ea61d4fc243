"""Streaming, batched evaluation of the task's fitness over episodes, on the env's device.

Per step, the tracker only advances the running value of each aggregation in the fitness
expression (``sum``, ``min``, ...) and copies a few tensors into a small buffer. Everything that
happens when episodes end (the episode-level expression, why each episode ended, totals) is
computed for a whole buffer of steps at once, vectorised over steps and envs. Nothing is copied
to the host until a caller asks for a summary.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .expressions import FitnessProgram, StepExpression, names_in, to_float_tensor

_INIT = {"mean": 0.0, "sum": 0.0, "min": float("inf"), "max": float("-inf"), "any": 0.0,
         "all": 1.0, "last": 0.0}


class FitnessTracker:
    """Per-env episode bookkeeping: fitness, length and why each episode ended.

    ``pop_interval`` returns (and clears) the totals over episodes that ended since the last
    call; ``first_fitness``/``first_length``/``first_episode_reasons`` describe the first episode
    of every env, which is what an evaluation of ``num_envs`` episodes needs.
    """

    def __init__(self, program: FitnessProgram, num_envs: int, max_episode_steps: int,
                 terminations: Mapping[str, str], variable_names: list[str],
                 device: torch.device, dtype: torch.dtype = torch.float32, buffer_steps: int = 32):
        self.program = program
        self.max_episode_steps = float(max_episode_steps)
        self.reasons = list(terminations)
        self.termination_exprs = [StepExpression(t, set(variable_names), where=f"termination {n}")
                                  for n, t in terminations.items()]
        self.reason_vars = sorted(set().union(*(names_in(e.tree) for e in self.termination_exprs)))
        n, A, B = num_envs, len(program.aggregations), buffer_steps
        kw: dict[str, Any] = {"device": device, "dtype": dtype}
        self.init = torch.tensor([_INIT[a.kind] for a in program.aggregations], **kw)
        self.acc = self.init[:, None].repeat(1, n)        # (A, n) running value per aggregation
        self.length = torch.zeros(n, **kw)
        # the last B steps, folded in by _flush()
        self.B, self.t = B, 0
        self.buf_acc = torch.zeros((B, A, n), **kw)
        self.buf_len = torch.zeros((B, n), **kw)
        self.buf_term = torch.zeros((B, n), dtype=torch.bool, device=device)
        self.buf_trunc = torch.zeros((B, n), dtype=torch.bool, device=device)
        self.buf_vars: dict[str, torch.Tensor] = {}
        # interval totals (since the last pop)
        self.fit_sum = torch.zeros((), device=device, dtype=torch.float64)
        self.len_sum = torch.zeros((), device=device, dtype=torch.float64)
        self.episodes = torch.zeros((), device=device, dtype=torch.long)
        self.reason_counts = torch.zeros(len(self.reasons) + 2, device=device, dtype=torch.long)
        # first episode of each env
        self._finished = torch.zeros(n, device=device, dtype=torch.bool)
        self._first_fitness = torch.zeros(n, **kw)
        self._first_length = torch.zeros(n, **kw)
        self._first_reason = torch.zeros(n, device=device, dtype=torch.long)

    def update(self, variables: Mapping[str, torch.Tensor], action: torch.Tensor,
               terminated: torch.Tensor, truncated: torch.Tensor) -> None:
        """Advance one step (the state after the step, before any reset)."""
        values = {**variables, "action": action}
        like = self.length
        for i, agg in enumerate(self.program.aggregations):
            v = to_float_tensor(agg.fn(values), like)
            a = self.acc[i]
            if agg.kind in ("mean", "sum"):
                a += v
            elif agg.kind == "min":
                torch.minimum(a, v, out=a)
            elif agg.kind == "max":
                torch.maximum(a, v, out=a)
            elif agg.kind == "all":
                a.mul_(v != 0)
            elif agg.kind == "any":
                torch.maximum(a, (v != 0).to(v.dtype), out=a)
            else:  # last
                a.copy_(v)
        self.length += 1
        t = self.t
        self.buf_acc[t].copy_(self.acc)
        self.buf_len[t].copy_(self.length)
        self.buf_term[t].copy_(terminated)
        self.buf_trunc[t].copy_(truncated)
        for name in self.reason_vars:
            if name not in self.buf_vars:
                self.buf_vars[name] = torch.zeros((self.B, *variables[name].shape), dtype=variables[name].dtype,
                                                  device=like.device)
            self.buf_vars[name][t].copy_(variables[name])
        done = terminated | truncated
        self.acc = torch.where(done, self.init[:, None], self.acc)
        self.length.masked_fill_(done, 0.0)
        self.t += 1
        if self.t == self.B:
            self._flush()

    def _flush(self) -> None:
        """Fold the buffered steps into the totals, vectorised over (steps, envs)."""
        T = self.t
        if T == 0:
            return
        self.t = 0
        length, term, trunc = self.buf_len[:T], self.buf_term[:T], self.buf_trunc[:T]
        done = term | trunc
        slots = {"episode_length": length, "max_episode_steps": self.max_episode_steps,
                 "terminated": term.to(length.dtype), "truncated": trunc.to(length.dtype)}
        for i, agg in enumerate(self.program.aggregations):
            a = self.buf_acc[:T, i]
            slots[agg.slot] = a / length if agg.kind == "mean" else a
        fitness = to_float_tensor(self.program.episode_value(slots), length)

        done_f = done.to(length.dtype)
        self.fit_sum += (fitness * done_f).sum()
        self.len_sum += (length * done_f).sum()
        self.episodes += done.sum()
        code = self._reason_codes({k: v[:T] for k, v in self.buf_vars.items()}, term, trunc)
        self.reason_counts.scatter_add_(0, code.flatten(), done.flatten().long())

        # the first episode of each env ends at its first done step not already counted
        first = done & (done.long().cumsum(0) == 1) & ~self._finished
        self._first_fitness = torch.where(first, fitness, 0.0).sum(0) + self._first_fitness
        self._first_length = torch.where(first, length, 0.0).sum(0) + self._first_length
        self._first_reason = torch.where(first, code, 0).sum(0) + self._first_reason
        self._finished |= done.any(0)

    def _reason_codes(self, values, terminated, truncated) -> torch.Tensor:
        """Index into ``reason_names()`` of why each episode ends (0 where none ends)."""
        other = len(self.reasons)
        code = torch.full_like(terminated, other, dtype=torch.long)
        # the first matching named reason wins, so walk them in reverse
        for i in reversed(range(len(self.termination_exprs))):
            hit = to_float_tensor(self.termination_exprs[i].fn(values), terminated.to(torch.float32)) != 0
            code = torch.where(hit, i, code)
        code = torch.where(truncated, other + 1, code)
        return torch.where(terminated | truncated, code, 0)

    def reason_names(self) -> list[str]:
        return [*self.reasons, "other_termination", "time_limit"]

    # -- first episode of each env (evaluation) --------------------------------------------------
    @property
    def finished(self) -> torch.Tensor:
        self._flush()
        return self._finished

    @property
    def first_fitness(self) -> torch.Tensor:
        self._flush()
        return self._first_fitness

    @property
    def first_length(self) -> torch.Tensor:
        self._flush()
        return self._first_length

    def first_episode_reasons(self) -> dict[str, int]:
        """Why the first episode of each env ended, counted by reason."""
        self._flush()
        counts = torch.bincount(self._first_reason[self._finished], minlength=len(self.reason_names()))
        return {n: c for n, c in zip(self.reason_names(), counts.tolist()) if c}

    def pop_interval(self) -> dict:
        """Host-side totals over episodes that ended since the last call, then reset them."""
        self._flush()
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
