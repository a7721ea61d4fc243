"""Environment registry: ``backend:id`` names such as ``torch:CartPole``.

Each backend (a folder here: ``torch/``, ``gymnasium/``, ``isaacgym/``) answers three questions:
which ids it knows, how an env describes itself, and how to build a batched env on a device.

>>> from rewardsmith import envs
>>> envs.describe("torch:CartPole").variable_names
['cart_pos', 'cart_vel', 'pole_angle', 'pole_vel']
"""

from __future__ import annotations

from typing import Any, Protocol

from ..errors import UnknownEnvError
from .description import EnvDescription
from .gymnasium import GymnasiumBackend
from .isaacgym import IsaacGymBackend
from .torch import TorchBackend


class Backend(Protocol):
    def known(self) -> list[str]: ...
    def describe(self, env_id: str, **kwargs: Any) -> EnvDescription: ...
    def make(self, env_id: str, num_envs: int, device: str, seed: int,
             max_episode_steps: int | None, **kwargs: Any): ...


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
