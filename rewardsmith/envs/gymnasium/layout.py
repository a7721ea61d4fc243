"""How a gymnasium env describes itself: its spaces, time limit and ``info`` keys, named.

The description is built from one real env instance and the names in :mod:`.naming` (or a
task's own ``env.variables``). Imports gymnasium but never torch.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from ...errors import EnvOptionError, RewardsmithError
from ..description import ActionSpec, EnvDescription, StateVar
from .make import make_single
from .naming import fallback_variables, from_sources, registered_naming

DEFAULT_MAX_EPISODE_STEPS = 1000  # for envs registered without a time limit


@dataclass(frozen=True)
class GymLayout:
    """A described gymnasium env: what the designer sees and where each name's value comes from."""

    description: EnvDescription  # its variables say where each value is read from (obs or info)
    obs_dim: int
    flatten: bool  # the observation space is not a flat Box: flatten it for the policy


def _as_variables(variables: Any) -> tuple[StateVar, ...]:
    return tuple(v if isinstance(v, StateVar) else StateVar.model_validate(v) for v in variables or ())


def layout(env_id: str, variables: Any = (), kwargs: dict[str, Any] | None = None) -> GymLayout:
    """Describe ``env_id`` built with ``kwargs`` (cached per process)."""
    sources = _as_variables(variables)
    key = json.dumps([kwargs or {}, [s.model_dump() for s in sources]], sort_keys=True, default=repr)
    return _layout(env_id, key)


@lru_cache(maxsize=64)
def _layout(env_id: str, key: str) -> GymLayout:
    kwargs, source_dicts = json.loads(key)
    sources = tuple(StateVar.model_validate(s) for s in source_dicts)
    env = make_single(env_id, kwargs)
    try:
        return _describe_instance(env_id, env, sources, kwargs)
    except RewardsmithError:
        raise
    except Exception as exc:  # the env itself failed on its first reset or step
        what = f"gymnasium:{env_id} failed on its first reset and step ({type(exc).__name__}: {exc})"
        raise (EnvOptionError("env.kwargs", f"{what}; with kwargs {kwargs}") if kwargs
               else RewardsmithError(what)) from None
    finally:
        env.close()


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


def _describe_instance(env_id: str, env, sources: tuple[StateVar, ...], kwargs: dict) -> GymLayout:
    env.reset(seed=0)
    env.action_space.seed(0)
    _, _, _, _, info = env.step(env.action_space.sample())
    spec_steps = env.spec.max_episode_steps if env.spec is not None else None
    return build_layout(env_id, env.observation_space, env.action_space, sources,
                        naming=registered_naming(env_id, kwargs), info_keys=set(_info_scalars(info)),
                        unwrapped=env.unwrapped, max_episode_steps=spec_steps)


def build_layout(env_id: str, observation_space, action_space, sources: tuple[StateVar, ...] = (),
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
            raise EnvOptionError(where, f"{v.name}: {problem}")
        if not problem:  # registry entries that kwargs removed (e.g. no contact forces) drop out
            kept.append(v)
    names = [v.name for v in kept]
    if len(set(names)) != len(names):
        raise EnvOptionError("env.variables", f"duplicate names in {names}")
    if not kept:
        raise RewardsmithError(f"gymnasium:{env_id}: no state variables could be named; list them in env.variables")
    summary = naming.summary if naming else _summary(env_id, unwrapped)
    terminations = _terminations(naming, unwrapped, set(names)) if naming and not sources else {}
    dt = getattr(unwrapped, "dt", None) or getattr(unwrapped, "tau", None)
    description = EnvDescription(
        id=f"gymnasium:{env_id}", summary=summary,
        variables=tuple(kept),
        action=action, terminations=terminations,
        max_episode_steps=max_episode_steps or DEFAULT_MAX_EPISODE_STEPS,
        observation=f"a flat vector of {obs_dim} numbers" + (" (flattened)" if flatten else ""),
        dt=float(dt) if isinstance(dt, (int, float, np.floating)) else None,
    )
    return GymLayout(description, obs_dim, flatten)


def _source_problem(v: StateVar, obs_dim: int, info_keys: set[str] | None) -> str | None:
    if v.info is not None:
        return None if info_keys is None or v.info in info_keys else f"the env's info has no numeric key {v.info!r} " \
                                                f"(it has: {', '.join(sorted(info_keys)) or 'none'})"
    if v.obs is None:
        return "it names neither an obs index nor an info key"
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
    sources = _as_variables(variables)
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
