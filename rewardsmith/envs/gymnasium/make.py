"""``gym.make`` for the gymnasium backend, with gymnasium's errors as one-line user errors."""

from __future__ import annotations

from typing import Any

from ...errors import RewardsmithError, UnknownEnvError


def make_single(env_id: str, kwargs: dict[str, Any], max_episode_steps: int | None = None, flatten: bool = False):
    """One env of ``env_id``; ``flatten`` turns a structured observation into one flat vector."""
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
