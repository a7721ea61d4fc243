"""Environment registry: ``backend:id`` names such as ``torch:CartPole``.

Each backend (``torch`` here; others register the same way) answers three questions: which
ids it knows, how an env describes itself, and how to build a batched env on a device.

>>> from rewardsmith import envs
>>> envs.describe("torch:CartPole").variable_names
['cart_pos', 'cart_vel', 'pole_angle', 'pole_vel']
"""

from __future__ import annotations

import importlib
from typing import Any, Protocol

from ..errors import UnknownEnvError
from . import catalog
from .description import EnvDescription
from .gym_backend import GymnasiumBackend
from .vectask import IsaacGymBackend


class Backend(Protocol):
    def known(self) -> list[str]: ...
    def describe(self, env_id: str, **kwargs: Any) -> EnvDescription: ...
    def make(self, env_id: str, num_envs: int, device: str, seed: int,
             max_episode_steps: int | None, **kwargs: Any): ...


class TorchBackend:
    """Batched envs written in torch. The class (and torch) is imported only when an env is
    built, so describing an env or checking a task file stays fast."""

    ENVS: dict[str, tuple[EnvDescription, str]] = {
        "CartPole": (catalog.CARTPOLE, "rewardsmith.envs.cartpole:CartPole"),
        "Pendulum": (catalog.PENDULUM, "rewardsmith.envs.pendulum:Pendulum"),
        "MountainCarContinuous": (catalog.MOUNTAIN_CAR_CONTINUOUS, "rewardsmith.envs.mountain_car:MountainCarContinuous"),
        "Acrobot": (catalog.ACROBOT, "rewardsmith.envs.acrobot:Acrobot"),
        "Reacher": (catalog.REACHER, "rewardsmith.envs.reacher:Reacher"),
    }

    def known(self) -> list[str]:
        return list(self.ENVS)

    def _entry(self, env_id: str) -> tuple[EnvDescription, str]:
        entry = self.ENVS.get(env_id)
        if entry is None:
            raise UnknownEnvError(f"unknown environment 'torch:{env_id}' (known: {', '.join(known_envs())})")
        return entry

    def describe(self, env_id: str, **kwargs: Any) -> EnvDescription:
        return self._entry(env_id)[0]

    def make(self, env_id: str, num_envs: int, device: str, seed: int, max_episode_steps: int | None,
             **kwargs: Any):
        module, _, cls = self._entry(env_id)[1].partition(":")
        env_cls = getattr(importlib.import_module(module), cls)
        return env_cls(num_envs=num_envs, device=device, seed=seed, max_episode_steps=max_episode_steps, **kwargs)


BACKENDS: dict[str, Backend] = {"torch": TorchBackend(), "gymnasium": GymnasiumBackend(),
                               "isaacgym": IsaacGymBackend()}


def split_name(name: str, backend: str | None = None) -> tuple[str, str]:
    """``"torch:CartPole"`` -> ``("torch", "CartPole")``; a bare id takes ``backend``."""
    if ":" in name:
        backend, _, env_id = name.partition(":")
    else:
        env_id = name
    if backend is None:
        raise UnknownEnvError(f"environment {name!r} has no backend; write it as BACKEND:ID, "
                              f"for example torch:CartPole (backends: {', '.join(BACKENDS)})")
    return backend, env_id


def _backend(name: str) -> Backend:
    if name not in BACKENDS:
        raise UnknownEnvError(f"unknown env backend {name!r} (known: {', '.join(BACKENDS)})")
    return BACKENDS[name]


def known_envs() -> list[str]:
    return [f"{name}:{env_id}" for name, backend in BACKENDS.items() for env_id in backend.known()]


def describe(name: str, backend: str | None = None, **kwargs: Any) -> EnvDescription:
    """The :class:`~rewardsmith.envs.description.EnvDescription` of a registered env."""
    backend, env_id = split_name(name, backend)
    return _backend(backend).describe(env_id, **kwargs)


def make(name: str, num_envs: int, device: str = "cpu", seed: int = 0,
         max_episode_steps: int | None = None, backend: str | None = None, **kwargs: Any):
    """Build a batched env on ``device``."""
    backend, env_id = split_name(name, backend)
    return _backend(backend).make(env_id, num_envs, device, seed, max_episode_steps, **kwargs)
