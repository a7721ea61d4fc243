"""``gym.make`` for the gymnasium backend, with gymnasium's errors as one-line user errors."""

from __future__ import annotations

import logging
import sys
from typing import Any

from ...errors import EnvOptionError, RewardsmithError, UnknownEnvError


def make_single(env_id: str, kwargs: dict[str, Any], max_episode_steps: int | None = None, flatten: bool = False):
    """One env of ``env_id``; ``flatten`` turns a structured observation into one flat vector.

    ``env_id`` may be gymnasium's ``module:EnvId``: the module is imported first (it registers
    the env), as ``gym.make`` does."""
    try:
        import gymnasium
    except ImportError:  # pragma: no cover - a core dependency
        raise RewardsmithError("the gymnasium backend needs gymnasium: pip install gymnasium") from None
    import_env_module(env_id)
    if "mujoco" in sys.modules or "mujoco" in str(getattr(gymnasium.registry.get(env_id), "entry_point", "")):
        quiet_mujoco()
    try:
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
