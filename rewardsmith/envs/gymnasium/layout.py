"""How a gymnasium env describes itself: its spaces, time limit and ``info`` keys, named.

The description is built from one real env instance and the names in :mod:`.naming` (or a
task's own ``env.variables``); an env simulated with MuJoCo is also named from its model
(:mod:`.mujoco`, :mod:`.metaworld`), which fills in what the registry leaves as ``obs_N`` and adds
model quantities as ``info`` variables. Imports gymnasium but never torch.
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
    # wrappers each env copy needs, as (name, args) for make.make_single: e.g. the model quantities
    # that info variables read (("model_state", specs))
    wrappers: tuple[tuple[str, tuple], ...] = ()


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


def _info_shapes(info: dict) -> dict[str, tuple[int, ...]]:
    """Numeric entries of a step's info: key -> per-env shape (() for a number)."""
    import numpy as np

    out = {}
    for key, value in info.items():
        if not isinstance(key, str) or key.startswith("_"):
            continue
        try:
            array = np.asarray(value)
        except Exception:
            continue
        if array.dtype.kind in "biuf" and array.size <= 1024:
            out[key] = tuple(int(d) for d in array.shape)
    return out


def _describe_instance(env_id: str, env, sources: tuple[StateVar, ...], kwargs: dict) -> GymLayout:
    from gymnasium import spaces

    env.reset(seed=0)
    env.action_space.seed(0)
    _, _, _, _, info = env.step(env.action_space.sample())
    info_shapes = _info_shapes(info)
    spec_steps = env.spec.max_episode_steps if env.spec is not None else None
    naming = registered_naming(env_id, kwargs)
    model = None
    from .mujoco import is_mujoco

    if is_mujoco(env.unwrapped):
        from .metaworld import is_metaworld

        if is_metaworld(env.unwrapped):
            from .metaworld import naming as metaworld_naming

            model = metaworld_naming(env)
        else:
            from .mujoco import model_naming

            space = env.observation_space
            flat = None if isinstance(space, spaces.Box) and len(space.shape) == 1 else \
                (lambda obs: spaces.flatten(space, obs))
            taken = {v.name for v in naming.variables} if naming else set()
            model = model_naming(env, flat, taken | set(info_shapes))
    return build_layout(env_id, env.observation_space, env.action_space, sources, naming=naming,
                        info_keys=info_shapes, unwrapped=env.unwrapped, max_episode_steps=spec_steps, model=model)


def build_layout(env_id: str, observation_space, action_space, sources: tuple[StateVar, ...] = (),
                 naming=None, info_keys: dict[str, tuple[int, ...]] | None = None, unwrapped=None,
                 max_episode_steps: int | None = None, model=None) -> GymLayout:
    """Names for an env given its spaces. ``info_keys`` (key -> shape, from a probe step) checks and
    completes the info variables; without it, info variables are taken on trust and none are guessed.
    ``model`` (a :class:`~.mujoco.ModelNaming`) names what the registry leaves unnamed and adds the
    model's quantities as info variables, read by the wrappers the layout lists."""
    import numpy as np
    from gymnasium import spaces

    parts, flatten = _obs_parts(observation_space)
    obs_dim = int(spaces.flatdim(observation_space))
    action = _action_spec(action_space)
    extras = {q.name: q for q in model.extras} if model else {}
    known = dict(info_keys) if info_keys is not None else None
    if known is not None:
        known.update({name: q.shape for name, q in extras.items()})
    variables: tuple[StateVar, ...]
    if sources:
        variables, where = from_sources(sources), "env.variables"
    else:
        scalars = sorted(k for k, shape in (info_keys or {}).items() if not shape)
        variables, where = tuple(_named(parts, naming, model, obs_dim, scalars)), None
    kept = []
    for v in variables:
        problem = _source_problem(v, obs_dim, known)
        if problem and where:
            raise EnvOptionError(where, f"{v.name}: {problem}")
        if not problem:  # registry entries that kwargs removed (e.g. no contact forces) drop out
            if v.info is not None and known is not None and not v.shape and known.get(v.info):
                v = v.model_copy(update={"shape": known[v.info]})  # a task's info variable takes the value's shape
            kept.append(v)
    names = [v.name for v in kept]
    if len(set(names)) != len(names):
        raise EnvOptionError("env.variables", f"duplicate names in {names}")
    if not kept:
        raise RewardsmithError(f"gymnasium:{env_id}: no state variables could be named; list them in env.variables")
    summary = naming.summary if naming else (model.summary if model and model.summary else _summary(env_id, unwrapped))
    terminations = _terminations(naming, unwrapped, set(names)) if naming and not sources else {}
    dt = getattr(unwrapped, "dt", None) or getattr(unwrapped, "tau", None)
    used = [extras[v.info].spec() for v in kept if v.info in extras]
    wrappers = tuple(model.wrappers) if model else ()
    if used:
        wrappers += (("model_state", (tuple(used), True)),)  # packed: one info array, read by GymVecEnv
    description = EnvDescription(
        id=f"gymnasium:{env_id}", summary=summary,
        variables=tuple(kept),
        action=action, terminations=terminations,
        max_episode_steps=max_episode_steps or DEFAULT_MAX_EPISODE_STEPS,
        observation=f"a flat vector of {obs_dim} numbers" + (" (flattened)" if flatten else "") + "".join(
            f"; entries {a}-{b - 1} are always zero (padding)" for a, b in (model.padding if model else ())),
        dt=float(dt) if isinstance(dt, (int, float, np.floating)) else None,
        structure=model.tree if model else "",
    )
    return GymLayout(description, obs_dim, flatten, wrappers)


def _named(parts, naming, model, obs_dim: int, info_scalars: list[str]) -> list[StateVar]:
    """The env's own names: the registry's (or, without an entry, the model's) for the
    observation, the model's for what is still unnamed, generic ``obs_N`` for the rest; then info
    variables and the model's extra quantities."""
    import numpy as np

    covered = np.zeros(obs_dim, dtype=bool)
    for start, stop in (model.padding if model else ()):
        covered[start:stop] = True  # known to hold nothing: no obs_N for it
    out: list[StateVar] = []

    def add(v: StateVar) -> None:
        if v.obs is not None:
            lo, hi = v.obs if isinstance(v.obs, tuple) else (v.obs, v.obs + 1)
            if hi > obs_dim or covered[lo:hi].any():
                return
            covered[lo:hi] = True
        if all(v.name != o.name for o in out):
            out.append(v)

    for v in (naming.variables if naming else ()):
        add(v)
    for v in (model.observation if model else ()):
        add(v)
    if naming is None:
        for v in fallback_variables(_uncovered(parts, covered), []):
            add(v)
    for v in (model.info if model else ()):
        if v.info in info_scalars:
            add(v)
    if naming is None:
        for v in fallback_variables([], info_scalars):
            add(v)
    for q in (model.extras if model else ()):
        add(q.variable())
    return out


def _uncovered(parts, covered) -> list[tuple[str, int, int, float | None, float | None]]:
    """The observation parts, cut down to the runs no name covers yet."""
    out = []
    for key, start, stop, low, high in parts:
        if not covered[start:stop].any():
            out.append((key, start, stop, low, high))
            continue
        i = start
        while i < stop:
            if covered[i]:
                i += 1
                continue
            j = i
            while j < stop and not covered[j]:
                j += 1
            out.append((f"{key}_{i - start}" if key else "", i, j, low, high))
            i = j
    return out


def _source_problem(v: StateVar, obs_dim: int, info_keys: dict[str, tuple[int, ...]] | None) -> str | None:
    if v.info is not None:
        if info_keys is None:
            return None
        if v.info not in info_keys:
            return f"the env's info has no numeric key {v.info!r} (it has: {', '.join(sorted(info_keys)) or 'none'})"
        if v.shape and tuple(v.shape) != tuple(info_keys[v.info]):
            return f"info[{v.info!r}] has shape {tuple(info_keys[v.info])}, not {tuple(v.shape)}"
        return None
    if v.obs is None:
        return "it names neither an obs index nor an info key"
    stop = v.obs[1] if isinstance(v.obs, tuple) else v.obs + 1
    return None if stop <= obs_dim else f"obs index {v.obs} is outside the observation (size {obs_dim})"


# sentences that cite where an env comes from, or say what it is for, rather than what it is
_CITATION = re.compile(r"\]\(|<a |based on (the )?(work|environment)|described (by|in)|introduced (by|in)|corresponds to"
                       r"|\baims to\b", re.IGNORECASE)


def _summary(env_id: str, unwrapped) -> str:
    """One clean sentence from the env class's docstring: what the env is (its first sentence that
    is not a citation) and, if another sentence says it, what the goal is."""
    generic = f"the gymnasium environment {env_id} (no registered names: variables follow its observation space)"
    doc = (type(unwrapped).__doc__ or "") if unwrapped is not None else ""
    sentences = _doc_sentences(doc)
    plain = [t for t in sentences if not _CITATION.search(t) and len(t) > 20]
    if not plain:
        return generic
    first = plain[0]
    goal = next((t for t in plain if re.search(r"\bgoal\b", t, re.IGNORECASE)), None)
    summary = first.rstrip(".")
    if goal is not None and goal is not first:
        summary += "; " + goal[0].lower() + goal[1:].rstrip(".")
    summary = _strip_markup(summary)
    return summary if len(summary) <= 400 else summary[:397].rsplit(" ", 1)[0] + "..."


def _doc_sentences(doc: str) -> list[str]:
    """Sentences of a docstring's opening text and its Description section, markup removed."""
    sections = re.split(r"^\s*#+\s*", doc, flags=re.MULTILINE)
    keep = [sections[0]] + [s.split("\n", 1)[1] for s in sections[1:]
                            if s.lower().startswith("description") and "\n" in s]
    text = "\n".join(keep)
    text = re.sub(r"```.*?```", " ", text, flags=re.DOTALL)            # figures and code blocks
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1 ](link)", text)       # keep link text, mark the citation
    text = re.sub(r"\s+", " ", text).strip()
    return [t.strip() for t in re.split(r"(?<=[.!?])\s+(?=[A-Z\"'(])", text) if t.strip()]


def _strip_markup(text: str) -> str:
    text = text.replace(" ](link)", "")
    text = re.sub(r"[`*_]{1,3}([^`*_]+)[`*_]{1,3}", r"\1", text)
    text = re.sub(r"<[^>]+>", "", text)
    return re.sub(r"\s+", " ", text).strip()


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
            return fresh if _has_model_state(env) else _without_wrapped_variables(fresh)
    env_id = spec.id if spec is not None else type(getattr(env, "unwrapped", env)).__name__
    return build_layout(env_id, obs_space, action_space, sources,
                        unwrapped=None if vector else getattr(env, "unwrapped", None),
                        max_episode_steps=spec.max_episode_steps if spec is not None else None)


def _has_model_state(env) -> bool:
    from .mujoco import ModelStateInfo

    while env is not None:
        if isinstance(env, ModelStateInfo):
            return True
        env = getattr(env, "env", None)
    return False


def _without_wrapped_variables(layout: GymLayout) -> GymLayout:
    """The layout of an env the user built themselves: without the info variables that only the
    layout's own wrappers (model quantities) would put there."""
    computed = {spec[0] for name, args in layout.wrappers if name == "model_state" for spec in args[0]}
    if not computed:
        return layout
    kept = tuple(v for v in layout.description.variables if v.info not in computed)
    description = layout.description.model_copy(update={"variables": kept})
    return GymLayout(description, layout.obs_dim, layout.flatten, ())
