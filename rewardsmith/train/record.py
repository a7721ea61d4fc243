"""Record what an evaluation sees: each env's first episode, its per-step state and action.

Runs in the clean evaluation job (no reward code), so what it records can be trusted as data:
the run keeps these episodes (:mod:`rewardsmith.episodes`) to judge later rewards on. The
recorder rides along :func:`~rewardsmith.train.evaluate.evaluate_policy` (its ``on_step``), so
the episodes recorded are the very episodes the fitness was measured on.
"""

from __future__ import annotations

import numpy as np
import torch

from ..episodes import EpisodeBatch
from ..schemas import EpisodeMeta


class EpisodeRecorder:
    """Collects the steps of each env's first episode (called after every step)."""

    def __init__(self, keep: int):
        self.keep = keep  # the first ``keep`` envs' episodes are recorded
        self.steps: list[tuple[dict[str, torch.Tensor], torch.Tensor, torch.Tensor]] = []

    def __call__(self, step, active: torch.Tensor) -> None:
        """``active``: the envs still in their first episode before this step."""
        k = self.keep
        self.steps.append(({name: v[:k].detach().to("cpu", torch.float32, copy=True)
                            for name, v in step.variables.items()},
                           step.action[:k].detach().to("cpu", torch.float32, copy=True),
                           active[:k].detach().cpu().clone()))

    def batch(self, fitness: torch.Tensor, source: str, **meta) -> EpisodeBatch | None:
        """The recorded episodes, each with its fitness from the evaluation."""
        if not self.steps:
            return None
        masks = torch.stack([m for _, _, m in self.steps])            # (T, k)
        names = list(self.steps[0][0])
        variables = {n: torch.stack([s[n] for s, _, _ in self.steps]) for n in names}  # (T, k, ...)
        action = torch.stack([a for _, a, _ in self.steps])            # (T, k, *action)
        per_var: dict[str, list[np.ndarray]] = {n: [] for n in names}
        actions, metas = [], []
        for i in range(masks.shape[1]):
            rows = masks[:, i].nonzero().squeeze(-1)
            if not len(rows):
                continue
            for n in names:
                per_var[n].append(variables[n][rows, i].numpy())
            actions.append(action[rows, i].numpy())
            metas.append(EpisodeMeta(source=source, fitness=float(fitness[i]), length=len(rows), **meta))
        if not metas:
            return None
        return EpisodeBatch({n: np.concatenate(v) for n, v in per_var.items()}, np.concatenate(actions), metas)


class RandomPolicy:
    """Random actions over the action space, each held ``hold`` steps: the first iteration's
    episodes when no policy exists yet (holding makes the random walks go further)."""

    def __init__(self, env, hold: int, seed: int):
        self.env, self.hold, self.t = env, max(1, hold), 0
        self.gen = torch.Generator(device="cpu").manual_seed(seed)
        self.current: torch.Tensor | None = None

    def act(self, obs: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        if self.current is None or self.t % self.hold == 0:
            spec, n = self.env.action_spec, self.env.num_envs
            if spec.kind == "discrete":
                action = torch.randint(0, spec.n, (n,), generator=self.gen)
            else:
                u = torch.rand(n, spec.size, generator=self.gen)
                low, high = self.env.action_low.cpu(), self.env.action_high.cpu()
                action = low + u * (high - low)
            self.current = action.to(obs.device)
        self.t += 1
        return self.current
