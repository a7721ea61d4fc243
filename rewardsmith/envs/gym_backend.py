"""The ``gymnasium`` backend: any registered gymnasium id, with named state variables.

``gymnasium:Pendulum-v1`` on the command line, or ``backend: gymnasium`` in a task file. The
description is built from one real env instance (spaces, time limit, ``info`` keys) and the
names in :mod:`~rewardsmith.envs.naming`; the batched env (:mod:`~rewardsmith.envs.gym_vec`)
is gymnasium's vector API with torch tensors at the boundary. This module imports gymnasium
but never torch, so the host can describe envs and check task files quickly.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ..errors import RewardsmithError, UnknownEnvError
from .description import ActionSpec, EnvDescription, StateVar
from .naming import REGISTRY, Var, VariableSource, fallback_variables, family, from_sources, registered_naming

DEFAULT_MAX_EPISODE_STEPS = 1000  # for envs registered without a time limit
VECTORIZATION = ("sync", "async")


@dataclass(frozen=True)
class GymLayout:
    """A described gymnasium env: what the designer sees and where each name's value comes from."""

    description: EnvDescription
    variables: tuple[Var, ...]
    obs_dim: int
    flatten: bool  # the observation space is not a flat Box: flatten it for the policy


class GymnasiumBackend:
    """Any gymnasium id; vectorized with ``SyncVectorEnv`` (default) or ``AsyncVectorEnv``.

    Options besides the env's own ``kwargs`` (for ``gym.make``): ``variables`` (a task's own
    names, see :class:`~rewardsmith.envs.naming.VariableSource`) and ``vectorization``
    (``sync`` or ``async``).
    """

    name = "gymnasium"

    def known(self) -> list[str]:
        try:
            import gymnasium
        except ImportError:
            return []
        latest: dict[str, str] = {}
        for env_id in sorted(gymnasium.registry, key=_version_key):
            if "/" not in env_id and family(env_id) in REGISTRY and _installed(env_id):
                latest[family(env_id)] = env_id
        return list(latest.values())

    def describe(self, env_id: str, variables: Any = (), vectorization: str = "sync",
                 **kwargs: Any) -> EnvDescription:
        return layout(env_id, variables, kwargs).description

    def make(self, env_id: str, num_envs: int, device: str, seed: int, max_episode_steps: int | None,
             variables: Any = (), vectorization: str = "sync", **kwargs: Any):
        if vectorization not in VECTORIZATION:
            raise RewardsmithError(f"vectorization must be one of {', '.join(VECTORIZATION)}, not {vectorization!r}")
        from .gym_vec import GymVecEnv

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


def layout(env_id: str, variables: Any = (), kwargs: dict[str, Any] | None = None) -> GymLayout:
    """Describe ``env_id`` built with ``kwargs`` (cached per process)."""
    sources = tuple(s if isinstance(s, VariableSource) else VariableSource.model_validate(s) for s in variables or ())
    key = json.dumps([kwargs or {}, [s.model_dump() for s in sources]], sort_keys=True, default=repr)
    return _layout(env_id, key)


@lru_cache(maxsize=64)
def _layout(env_id: str, key: str) -> GymLayout:
    kwargs, source_dicts = json.loads(key)
    sources = tuple(VariableSource.model_validate(s) for s in source_dicts)
    env = make_single(env_id, kwargs)
    try:
        return _describe_instance(env_id, env, sources, kwargs)
    finally:
        env.close()


def make_single(env_id: str, kwargs: dict[str, Any], max_episode_steps: int | None = None, flatten: bool = False):
    """``gym.make`` with gymnasium's errors turned into one-line user errors."""
    try:
        import gymnasium
    except ImportError:  # pragma: no cover - a core dependency
        raise RewardsmithError("the gymnasium backend needs gymnasium: pip install gymnasium") from None
    try:
        env = gymnasium.make(env_id, max_episode_steps=max_episode_steps, **kwargs)
    except gymnasium.error.DependencyNotInstalled as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RewardsmithError(f"gymnasium:{env_id} needs a package that is not installed: {first}") from None
    except gymnasium.error.Error as exc:
        raise UnknownEnvError(f"unknown environment 'gymnasium:{env_id}': {exc}") from None
    except TypeError as exc:
        raise RewardsmithError(f"gymnasium:{env_id}: bad env kwargs: {exc}") from None
    if flatten:
        env = gymnasium.wrappers.FlattenObservation(env)
    return env


def _obs_parts(space) -> tuple[list[tuple[str, int, int, float | None, float | None]], bool]:
    """Pieces of the flattened observation: (key, start, stop, low, high); and whether to flatten."""
    from gymnasium import spaces

    if isinstance(space, spaces.Box) and len(space.shape) == 1:
        low, high = _bounds(space)
        return [("", 0, int(space.shape[0]), low, high)], False
    if isinstance(space, spaces.Dict):
        parts, start = [], 0
        for key, sub in space.spaces.items():
            size = int(spaces.flatdim(sub))
            low, high = _bounds(sub) if isinstance(sub, spaces.Box) else (None, None)
            parts.append((str(key), start, start + size, low, high))
            start += size
        return parts, True
    if isinstance(space, (spaces.Box, spaces.Discrete, spaces.MultiDiscrete, spaces.MultiBinary, spaces.Tuple)):
        return [("", 0, int(spaces.flatdim(space)), None, None)], True
    raise RewardsmithError(f"observation space {space} is not supported (Box, Dict, Discrete, Tuple are)")


def _bounds(space) -> tuple[float | None, float | None]:
    """One common finite (low, high) for a Box, if all its entries share it."""
    lows, highs = space.low.reshape(-1), space.high.reshape(-1)
    low = float(lows[0]) if (lows == lows[0]).all() and math.isfinite(lows[0]) else None
    high = float(highs[0]) if (highs == highs[0]).all() and math.isfinite(highs[0]) else None
    return low, high


def _action_spec(space) -> ActionSpec:
    from gymnasium import spaces

    if isinstance(space, spaces.Discrete):
        return ActionSpec(kind="discrete", n=int(space.n), description=f"one of {int(space.n)} choices")
    if isinstance(space, spaces.Box) and len(space.shape) == 1:
        k = int(space.shape[0])
        return ActionSpec(kind="continuous", shape=(k,), low=tuple(float(x) for x in space.low),
                          high=tuple(float(x) for x in space.high),
                          description=f"{k} continuous control input(s) (the env clips to the bounds)")
    raise RewardsmithError(f"action space {space} is not supported (Discrete and 1-D Box are)")


def _info_scalars(info: dict) -> list[str]:
    import numpy as np

    out = []
    for key, value in info.items():
        if isinstance(key, str) and not key.startswith("_") and np.ndim(value) == 0:
            try:
                float(value)
            except (TypeError, ValueError):
                continue
            out.append(key)
    return out


def _describe_instance(env_id: str, env, sources: tuple[VariableSource, ...], kwargs: dict) -> GymLayout:
    env.reset(seed=0)
    env.action_space.seed(0)
    _, _, _, _, info = env.step(env.action_space.sample())
    spec_steps = env.spec.max_episode_steps if env.spec is not None else None
    return build_layout(env_id, env.observation_space, env.action_space, sources,
                        naming=registered_naming(env_id, kwargs), info_keys=set(_info_scalars(info)),
                        unwrapped=env.unwrapped, max_episode_steps=spec_steps)


def build_layout(env_id: str, observation_space, action_space, sources: tuple[VariableSource, ...] = (),
                 naming=None, info_keys: set[str] | None = None, unwrapped=None,
                 max_episode_steps: int | None = None) -> GymLayout:
    """Names for an env given its spaces. ``info_keys`` (from a probe step) checks and completes
    the info variables; without it, info variables are taken on trust and none are guessed."""
    import numpy as np
    from gymnasium import spaces

    parts, flatten = _obs_parts(observation_space)
    obs_dim = int(spaces.flatdim(observation_space))
    action = _action_spec(action_space)
    if sources:
        variables, where = from_sources(sources), "env.variables"
    elif naming is not None:
        variables, where = naming.variables, None
    else:
        variables, where = fallback_variables(parts, sorted(info_keys or ())), None
    kept = []
    for v in variables:
        problem = _source_problem(v, obs_dim, info_keys)
        if problem and where:
            raise RewardsmithError(f"{where}: {v.name}: {problem}")
        if not problem:  # registry entries that kwargs removed (e.g. no contact forces) drop out
            kept.append(v)
    names = [v.name for v in kept]
    if len(set(names)) != len(names):
        raise RewardsmithError(f"env.variables: duplicate names in {names}")
    if not kept:
        raise RewardsmithError(f"gymnasium:{env_id}: no state variables could be named; list them in env.variables")
    summary = naming.summary if naming else _summary(env_id, unwrapped)
    terminations = _terminations(naming, unwrapped, set(names)) if naming and not sources else {}
    dt = getattr(unwrapped, "dt", None) or getattr(unwrapped, "tau", None)
    description = EnvDescription(
        id=f"gymnasium:{env_id}", summary=summary,
        variables=tuple(StateVar(name=v.name, description=v.description, unit=v.unit, shape=v.shape, low=v.low,
                                 high=v.high) for v in kept),
        action=action, terminations=terminations,
        max_episode_steps=max_episode_steps or DEFAULT_MAX_EPISODE_STEPS,
        observation=f"a flat vector of {obs_dim} numbers" + (" (flattened)" if flatten else ""),
        dt=float(dt) if isinstance(dt, (int, float, np.floating)) else None,
    )
    return GymLayout(description, tuple(kept), obs_dim, flatten)


def _source_problem(v: Var, obs_dim: int, info_keys: set[str] | None) -> str | None:
    if v.info is not None:
        return None if info_keys is None or v.info in info_keys else f"the env's info has no numeric key {v.info!r} " \
                                                f"(it has: {', '.join(sorted(info_keys)) or 'none'})"
    stop = v.obs[1] if isinstance(v.obs, tuple) else v.obs + 1
    return None if stop <= obs_dim else f"obs index {v.obs} is outside the observation (size {obs_dim})"


def _summary(env_id: str, unwrapped) -> str:
    doc = (type(unwrapped).__doc__ or "").strip() if unwrapped is not None else ""
    first = re.split(r"\n\s*\n", doc)[0] if doc else ""
    first = re.sub(r"\s+", " ", re.sub(r"[#`*]", "", first)).strip()
    generic = f"the gymnasium environment {env_id} (no registered names: variables follow its observation space)"
    return f"{first[:300]} ({env_id})" if first and len(first) > 20 else generic


def _terminations(naming, unwrapped, names: set[str]) -> dict[str, str]:
    """The registry's termination expressions with the env's own health ranges filled in."""
    if unwrapped is None:
        unwrapped = object()
    if getattr(unwrapped, "_terminate_when_unhealthy", True) is False:
        return {}
    values: dict[str, float] = {}
    for attr, low_key, high_key in (("_healthy_z_range", "z_low", "z_high"),
                                    ("_healthy_angle_range", "angle_low", "angle_high")):
        rng = getattr(unwrapped, attr, None)
        if rng is not None:
            values[low_key], values[high_key] = float(rng[0]), float(rng[1])
    out = {}
    for reason, template in naming.terminations.items():
        clauses = []
        for clause in template.split(" or "):
            fields = re.findall(r"\{(\w+)\}", clause)
            if any(f not in values for f in fields):
                continue
            if any(not math.isfinite(values[f]) for f in fields):
                continue  # an open bound (e.g. no upper height limit) never ends an episode
            clauses.append(clause.format(**values))
        if clauses and all(n in names for c in clauses for n in re.findall(r"[a-z_][a-z0-9_]*", c)
                           if n not in ("or", "and", "abs", "cos", "sin", "not")):
            out[reason] = " or ".join(clauses)
    return out


_NOT_ENV_KWARGS = {"render_mode", "num_envs", "vectorization_mode", "vector_kwargs", "wrappers"}


def describe_live(env, variables: Any = ()) -> GymLayout:
    """Names for a gymnasium env (or vector env) object the user already has; it is not stepped.

    A registered env whose spaces still match a fresh one (no wrapper changed them) gets the
    full description; anything else is named from its spaces (and ``variables``).
    """
    import gymnasium
    from gymnasium import spaces

    vector = isinstance(env, gymnasium.vector.VectorEnv)
    obs_space = env.single_observation_space if vector else env.observation_space
    action_space = env.single_action_space if vector else env.action_space
    sources = tuple(s if isinstance(s, VariableSource) else VariableSource.model_validate(s) for s in variables or ())
    spec = getattr(env, "spec", None)
    if spec is not None and spec.id in gymnasium.registry:
        kwargs = {k: v for k, v in (spec.kwargs or {}).items() if k not in _NOT_ENV_KWARGS}
        try:
            fresh = layout(spec.id, sources, kwargs)
        except RewardsmithError:
            fresh = None
        if fresh is not None and fresh.obs_dim == spaces.flatdim(obs_space) \
                and fresh.description.action == _action_spec(action_space):
            return fresh
    env_id = spec.id if spec is not None else type(getattr(env, "unwrapped", env)).__name__
    return build_layout(env_id, obs_space, action_space, sources,
                        unwrapped=None if vector else getattr(env, "unwrapped", None),
                        max_episode_steps=spec.max_episode_steps if spec is not None else None)
