"""The ``gymnasium`` backend: any registered gymnasium id, with named state variables.

``gymnasium:Pendulum-v1`` on the command line, or ``backend: gymnasium`` in a task file. The
description (:mod:`.layout`) is built from one real env instance (spaces, time limit, ``info``
keys) and the names in :mod:`.naming`; the batched env (:mod:`.vec`) is gymnasium's vector API
with torch tensors at the boundary. Describing imports gymnasium but never torch, so the host
can describe envs and check task files quickly.
"""

from __future__ import annotations

import re
from typing import Any

from ...errors import RewardsmithError
from ..description import EnvDescription
from .layout import layout
from .naming import REGISTRY, family

VECTORIZATION = ("sync", "async")


class GymnasiumBackend:
    """Any gymnasium id; vectorized with ``SyncVectorEnv`` (default) or ``AsyncVectorEnv``.

    Options besides the env's own ``kwargs`` (for ``gym.make``): ``variables`` (a task's own
    names: :class:`~rewardsmith.envs.description.StateVar` items with ``obs`` or ``info``) and
    ``vectorization`` (``sync`` or ``async``).
    """

    name = "gymnasium"

    def known(self) -> list[str]:
        try:
            import gymnasium
        except ImportError:
            return []
        latest: dict[str, str] = {}
        for env_id in sorted(gymnasium.registry, key=_version_key):
            named = family(env_id) in REGISTRY or "envs.mujoco" in str(gymnasium.registry[env_id].entry_point)
            if "/" not in env_id and named and _installed(env_id):  # named by the registry or from the model
                latest[family(env_id)] = env_id
        return list(latest.values())

    def describe(self, env_id: str, variables: Any = (), vectorization: str = "sync",
                 **kwargs: Any) -> EnvDescription:
        return layout(env_id, variables, kwargs).description

    def make(self, env_id: str, num_envs: int, device: str, seed: int, max_episode_steps: int | None,
             variables: Any = (), vectorization: str = "sync", **kwargs: Any):
        if vectorization not in VECTORIZATION:
            raise RewardsmithError(f"vectorization must be one of {', '.join(VECTORIZATION)}, not {vectorization!r}")
        from .vec import GymVecEnv

        return GymVecEnv(env_id, layout(env_id, variables, kwargs), num_envs=num_envs, device=device, seed=seed,
                         max_episode_steps=max_episode_steps, make_kwargs=kwargs, vectorization=vectorization)


def _installed(env_id: str) -> bool:
    """Whether the simulator a registered env needs (MuJoCo, Box2D) is importable."""
    import importlib.util

    import gymnasium

    entry = str(gymnasium.registry[env_id].entry_point)
    for marker, module in (("envs.mujoco", "mujoco"), ("envs.box2d", "Box2D")):
        if marker in entry:
            return importlib.util.find_spec(module) is not None
    return True


def _version_key(env_id: str) -> tuple[str, int]:
    m = re.search(r"-v(\d+)$", env_id)
    return (env_id[: m.start()] if m else env_id, int(m.group(1)) if m else 0)
