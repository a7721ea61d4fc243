"""The ``torch`` backend: rewardsmith's own batched envs, written in torch (GPU when present).

``torch:CartPole`` and friends. Each env class lives in its own module with its drawing; the
descriptions are data in :mod:`.catalog`, so describing an env or checking a task file does not
import torch.
"""

from __future__ import annotations

import importlib
from typing import Any

from ...errors import UnknownEnvError
from ..description import EnvDescription
from . import catalog


class TorchBackend:
    """Batched envs written in torch. The class (and torch) is imported only when an env is
    built, so describing an env or checking a task file stays fast."""

    ENVS: dict[str, tuple[EnvDescription, str]] = {
        "CartPole": (catalog.CARTPOLE, "rewardsmith.envs.torch.cartpole:CartPole"),
        "Pendulum": (catalog.PENDULUM, "rewardsmith.envs.torch.pendulum:Pendulum"),
        "MountainCarContinuous": (catalog.MOUNTAIN_CAR_CONTINUOUS, "rewardsmith.envs.torch.mountain_car:MountainCarContinuous"),
        "Acrobot": (catalog.ACROBOT, "rewardsmith.envs.torch.acrobot:Acrobot"),
        "Reacher": (catalog.REACHER, "rewardsmith.envs.torch.reacher:Reacher"),
    }

    def known(self) -> list[str]:
        return list(self.ENVS)

    def _entry(self, env_id: str) -> tuple[EnvDescription, str]:
        entry = self.ENVS.get(env_id)
        if entry is None:
            known = ", ".join(f"torch:{name}" for name in self.known())
            raise UnknownEnvError(f"unknown environment 'torch:{env_id}' (known: {known})")
        return entry

    def describe(self, env_id: str, **kwargs: Any) -> EnvDescription:
        return self._entry(env_id)[0]

    def make(self, env_id: str, num_envs: int, device: str, seed: int, max_episode_steps: int | None,
             **kwargs: Any):
        module, _, cls = self._entry(env_id)[1].partition(":")
        env_cls = getattr(importlib.import_module(module), cls)
        return env_cls(num_envs=num_envs, device=device, seed=seed, max_episode_steps=max_episode_steps, **kwargs)
