"""``gym.make`` for the gymnasium backend, with gymnasium's errors as one-line user errors."""

from __future__ import annotations

import contextlib
import copy
import logging
import os
import sys
from pathlib import Path
from typing import Any

from ...errors import EnvOptionError, RewardsmithError, UnknownEnvError


def make_single(env_id: str, kwargs: dict[str, Any], max_episode_steps: int | None = None, flatten: bool = False,
                wrappers: tuple[tuple[str, tuple], ...] = ()):
    """One env of ``env_id``; ``flatten`` turns a structured observation into one flat vector;
    ``wrappers`` are (name, args) pairs of :data:`WRAPPERS` a layout asks for (plain data, so an
    async vector env can send them to its workers).

    ``env_id`` may be gymnasium's ``module:EnvId``: the module is imported first (it registers
    the env), as ``gym.make`` does."""
    try:
        import gymnasium
    except ImportError:  # pragma: no cover - a core dependency
        raise RewardsmithError("the gymnasium backend needs gymnasium: pip install gymnasium") from None
    import_env_module(env_id)
    _register_namespace(env_id)
    if "mujoco" in sys.modules or "mujoco" in str(getattr(gymnasium.registry.get(env_id), "entry_point", "")):
        quiet_mujoco()
        parse_models_once()
    try:
        with _construction(env_id):
            if env_id.startswith("Meta-World/"):  # its resets fall outside its own observation bounds: no warnings
                kwargs = {"disable_env_checker": True, **kwargs}
            env = gymnasium.make(env_id, max_episode_steps=max_episode_steps, **kwargs)
    except gymnasium.error.DependencyNotInstalled as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise RewardsmithError(f"gymnasium:{env_id} needs a package that is not installed: {first}") from None
    except gymnasium.error.Error as exc:
        raise UnknownEnvError(f"unknown environment 'gymnasium:{env_id}': {exc}") from None
    except (TypeError, ValueError) as exc:
        if not kwargs:
            raise
        why = str(exc).split(" was raised from the environment creator")[0]
        raise EnvOptionError("env.kwargs", f"gymnasium:{env_id} does not take {kwargs}: {why}") from None
    for name, args in wrappers:
        env = _wrapper(name)(env, *args)
    if flatten:
        env = gymnasium.wrappers.FlattenObservation(env)
    return env


def import_env_module(env_id: str) -> None:
    """Import the module of a ``module:EnvId`` id (it registers its envs), or say why it cannot be."""
    import importlib

    module = env_id.rpartition(":")[0]
    if not module:
        return
    try:
        importlib.import_module(module)
    except ModuleNotFoundError as exc:
        why = f"no module named {exc.name!r} (is it installed, or on PYTHONPATH?)" if exc.name else str(exc)
        raise UnknownEnvError(f"unknown environment 'gymnasium:{env_id}': {why}") from None
    except Exception as exc:
        raise UnknownEnvError(f"unknown environment 'gymnasium:{env_id}': importing {module} failed "
                              f"({type(exc).__name__}: {exc})") from None


def quiet_mujoco() -> None:
    """MuJoCo's warnings (a deprecated model attribute, say) go to a logger, not to stderr and a
    ``MUJOCO_LOG.TXT`` in the working directory, which is what MuJoCo does by default."""
    try:
        import mujoco
    except ImportError:
        return  # the env itself will say that MuJoCo is missing
    log = logging.getLogger("rewardsmith.mujoco")
    mujoco.set_mju_user_warning(lambda message: log.info("MuJoCo: %s", message))


def parse_models_once() -> None:
    """MuJoCo envs parse their model's XML in their constructor (0.01-0.2 s; Meta-World's take the
    most), so a batch of N envs parses the same file N times, in every job. From here on, a model
    file this process parsed before (the same path and the same bytes) is copied instead, which
    takes a tenth of the time; the copy is a whole model of its own, as each env may change its
    own. A warm worker parses its env's models once: every job forked from it copies them."""
    try:
        import mujoco
    except ImportError:
        return
    parse = mujoco.MjModel.from_xml_path
    if getattr(parse, "parsed_once", False):
        return
    parsed: dict[tuple[str, bytes], Any] = {}  # (two threads may both parse a file once: no harm)

    def from_xml_path(filename, assets=None):
        if assets is not None:  # in-memory files beside it: not what envs do
            return parse(filename, assets)
        try:
            key = (os.path.abspath(filename), Path(filename).read_bytes())
        except (OSError, TypeError):
            return parse(filename)
        model = parsed.get(key)
        if model is None:
            model = parsed[key] = parse(filename)
        return copy.copy(model)  # MjModel's copy is a deep one

    from_xml_path.parsed_once = True  # type: ignore[attr-defined]
    mujoco.MjModel.from_xml_path = staticmethod(from_xml_path)


# packages that register a gymnasium namespace when imported, and how to install them
NAMESPACES = {"Meta-World": ("metaworld", "pip install 'rewardsmith[metaworld]'")}


def _construction(env_id: str):
    """What building ``env_id`` needs around ``gymnasium.make`` (Meta-World: see metaworld.building)."""
    if env_id.startswith("Meta-World/"):
        from .metaworld import building

        return building()
    return contextlib.nullcontext()


def _register_namespace(env_id: str) -> None:
    """Import the package behind an id's namespace (``Meta-World/MT1`` -> metaworld) so its ids exist."""
    import gymnasium

    namespace = env_id.split("/", 1)[0] if "/" in env_id else None
    if namespace not in NAMESPACES or env_id in gymnasium.registry:
        return
    module, install = NAMESPACES[namespace]
    try:
        __import__(module)
    except ImportError as exc:
        raise RewardsmithError(f"gymnasium:{env_id} needs the {module} package ({exc}): {install}") from None


def _wrapper(name: str):
    """The wrapper class a layout names: ``model_state`` (model quantities into info) or
    ``metaworld_seed`` (Meta-World seeded on reset)."""
    if name == "model_state":
        from .mujoco import ModelStateInfo

        return ModelStateInfo
    if name == "metaworld_seed":
        from .metaworld import SeedOnReset

        return SeedOnReset
    raise ValueError(f"unknown env wrapper {name!r}")
