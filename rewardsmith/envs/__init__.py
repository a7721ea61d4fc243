"""Environment registry: ``backend:id`` names such as ``torch:CartPole``.

>>> from rewardsmith import envs
>>> envs.describe("torch:CartPole").variable_names
['cart_pos', 'cart_vel', 'pole_angle', 'pole_vel']
"""

from __future__ import annotations

import importlib
from typing import Any

from ..errors import UnknownEnvError
from . import catalog
from .description import EnvDescription

# torch backend: id -> (description, "module:Class"); the class (and torch) is imported only
# when an env is built, so describing an env or checking a task file stays fast.
TORCH_ENVS: dict[str, tuple[EnvDescription, str]] = {
    "CartPole": (catalog.CARTPOLE, "rewardsmith.envs.cartpole:CartPole"),
}

BACKENDS = ("torch",)


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


def known_envs() -> list[str]:
    return [f"torch:{k}" for k in TORCH_ENVS]


def _torch_entry(backend: str, env_id: str) -> tuple[EnvDescription, str]:
    if backend not in BACKENDS:
        raise UnknownEnvError(f"unknown env backend {backend!r} (known: {', '.join(BACKENDS)})")
    entry = TORCH_ENVS.get(env_id)
    if entry is None:
        raise UnknownEnvError(f"unknown environment '{backend}:{env_id}' "
                              f"(known: {', '.join(known_envs())})")
    return entry


def describe(name: str, backend: str | None = None, **kwargs: Any) -> EnvDescription:
    """The :class:`~rewardsmith.envs.description.EnvDescription` of a registered env."""
    backend, env_id = split_name(name, backend)
    return _torch_entry(backend, env_id)[0]


def make(name: str, num_envs: int, device: str = "cpu", seed: int = 0,
         max_episode_steps: int | None = None, backend: str | None = None, **kwargs: Any):
    """Build a batched env on ``device``."""
    backend, env_id = split_name(name, backend)
    module, _, cls = _torch_entry(backend, env_id)[1].partition(":")
    env_cls = getattr(importlib.import_module(module), cls)
    return env_cls(num_envs=num_envs, device=device, seed=seed, max_episode_steps=max_episode_steps, **kwargs)
