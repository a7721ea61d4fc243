"""Put a rewardsmith reward on a gymnasium env the user already has (``rs.wrap``).

The wrapper replaces the env's reward with ``compute_reward`` over the env's named state (the
names ``rs.describe(env)`` lists), and puts each component into ``info["reward_components"]``
and the env's own reward into ``info["original_reward"]``. It works for a single env
(``gymnasium.Wrapper``) and a vector env (``gymnasium.vector.VectorWrapper``), so
Stable-Baselines3, CleanRL-style scripts and plain gymnasium loops train on it unchanged.

The reward code runs here, in the caller's process, with the caller's rights: that is the
point of wrapping your own env with your own (or your chosen) reward. Code from an LLM that you
have not read belongs in ``rewardsmith solve``, which runs it only inside a sandbox.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from pathlib import Path
from typing import Any

import gymnasium
import numpy as np
import torch
from gymnasium import spaces
from gymnasium.vector import AutoresetMode, VectorEnv, VectorWrapper
from gymnasium.vector.utils import batch_space, iterate

from .envs.gymnasium.layout import GymLayout, describe_live
from .errors import RewardsmithError
from .reward import RewardFunction, check_structure
from .reward import _bind as bind_arguments

RewardSource = Any  # code string, path to a .py file, a SolveResult, or a callable compute_reward


def reward_code(reward: RewardSource) -> str:
    """The source of ``reward``: code text, a ``.py`` path, or a result with ``best_code``."""
    best = getattr(reward, "best_code", None)
    if best is not None or hasattr(reward, "summary"):
        if best is None:
            raise RewardsmithError("that solve result has no trained reward (no candidate finished)")
        return best
    if isinstance(reward, Path) or (isinstance(reward, str) and "\n" not in reward and reward.endswith(".py")):
        path = Path(reward)
        if not path.is_file():
            raise RewardsmithError(f"{path}: no such reward file")
        return path.read_text()
    if isinstance(reward, str):
        return reward
    raise RewardsmithError(f"a reward is code, a .py path or a solve result, not {type(reward).__name__}")


class _Reward:
    """Named variables from (obs, info) batches, then ``compute_reward`` on them."""

    def __init__(self, layout: GymLayout, reward: RewardSource | Callable, obs_space: spaces.Space):
        self.layout = layout
        self.obs_space = obs_space
        allowed = layout.description.reward_arguments
        if callable(reward) and not hasattr(reward, "best_code"):
            self.fn, self.parameters = reward, bind_arguments(reward, allowed)
        else:
            loaded = RewardFunction(reward_code(reward), allowed)
            self.fn, self.parameters = loaded.invoke, loaded.parameters
        self.discrete = layout.description.action.kind == "discrete"

    def flat_obs(self, obs: Any, n: int) -> np.ndarray:
        if isinstance(self.obs_space, spaces.Box):
            return np.asarray(obs, dtype=np.float32).reshape(n, -1)
        if n == 1:
            return np.asarray(spaces.flatten(self.obs_space, obs), dtype=np.float32).reshape(1, -1)
        rows = iterate(batch_space(self.obs_space, n), obs)
        return np.stack([np.asarray(spaces.flatten(self.obs_space, o)) for o in rows]).astype(np.float32)

    def __call__(self, flat: np.ndarray, info_rows: dict[str, np.ndarray], action: Any, n: int):
        last = torch.from_numpy(flat)
        variables: dict[str, torch.Tensor] = {}
        for v in self.layout.description.variables:
            if v.obs is not None:
                variables[v.name] = last[:, v.obs[0]:v.obs[1]] if isinstance(v.obs, tuple) else last[:, v.obs]
            elif v.info is not None:
                variables[v.name] = torch.as_tensor(info_rows[v.info], dtype=torch.float32).reshape(n)
        act = torch.as_tensor(np.asarray(action), dtype=torch.float32).reshape(n, -1)
        if self.discrete:
            act = act.reshape(n)
        kwargs = {name: act if name == "action" else variables[name] for name in self.parameters}
        total, components = check_structure(self.fn(**kwargs), n)
        return total.detach().double().numpy(), {k: c.detach().double().numpy() for k, c in components.items()}

    def info_keys(self) -> list[str]:
        return [v.info for v in self.layout.description.variables if v.info is not None]


def _missing_info(key: str) -> RewardsmithError:
    return RewardsmithError(f"the env's info has no {key!r} this step; the reward needs it")


def _recorded(reward: RewardSource | Callable, variables: Any) -> dict[str, Any]:
    """The constructor arguments as ``env.spec`` keeps them: the reward as code (a function as
    itself) and the variables as plain dicts, so that ``env.spec.make()`` rebuilds the wrapper and
    a spec of code can be written as JSON."""
    code = reward if callable(reward) and not hasattr(reward, "best_code") else reward_code(reward)
    # built fresh here, so gymnasium need not deep-copy them (a TorchScript function cannot be copied)
    return {"reward": code, "variables": [v.model_dump() if hasattr(v, "model_dump") else copy.deepcopy(v)
                                          for v in variables or ()], "_disable_deepcopy": True}


class RewardWrapper(gymnasium.Wrapper, gymnasium.utils.RecordConstructorArgs):
    """A single gymnasium env whose reward is ``compute_reward`` over its named state."""

    def __init__(self, env: gymnasium.Env, reward: RewardSource | Callable, variables: Any = ()):
        gymnasium.utils.RecordConstructorArgs.__init__(self, **_recorded(reward, variables))
        gymnasium.Wrapper.__init__(self, env)
        self.layout = describe_live(env, variables)
        self.description = self.layout.description
        self._reward = _Reward(self.layout, reward, env.observation_space)

    def step(self, action):
        obs, original, terminated, truncated, info = self.env.step(action)
        rows = {}
        for key in self._reward.info_keys():
            if key not in info:
                raise _missing_info(key)
            rows[key] = np.asarray([info[key]], dtype=np.float32)
        total, components = self._reward(self._reward.flat_obs(obs, 1), rows, action, 1)
        info = {**info, "original_reward": original,
                "reward_components": {k: float(v[0]) for k, v in components.items()}}
        return obs, float(total[0]), terminated, truncated, info


class VectorRewardWrapper(VectorWrapper, gymnasium.utils.RecordConstructorArgs):
    """A gymnasium vector env whose rewards are ``compute_reward`` over each copy's named state.

    It follows the env's autoreset mode: with ``NEXT_STEP`` (gymnasium's default) the step that
    only resets a finished copy gets reward 0, as gymnasium gives; with ``SAME_STEP`` the state
    before the reset is read from ``info["final_obs"]`` and ``info["final_info"]``.
    """

    def __init__(self, env: VectorEnv, reward: RewardSource | Callable, variables: Any = ()):
        gymnasium.utils.RecordConstructorArgs.__init__(self, **_recorded(reward, variables))
        VectorWrapper.__init__(self, env)
        self.layout = describe_live(env, variables)
        self.description = self.layout.description
        self._reward = _Reward(self.layout, reward, env.single_observation_space)
        self.mode = AutoresetMode(env.metadata.get("autoreset_mode", AutoresetMode.NEXT_STEP))
        self._resetting = np.zeros(env.num_envs, dtype=bool)

    def reset(self, **kwargs):
        self._resetting[:] = False
        return self.env.reset(**kwargs)

    def step(self, actions):
        obs, original, terminated, truncated, info = self.env.step(actions)
        n = self.num_envs
        done = np.logical_or(terminated, truncated)
        flat = self._reward.flat_obs(obs, n)
        final_info = info.get("final_info", {}) if self.mode == AutoresetMode.SAME_STEP else {}
        if self.mode == AutoresetMode.SAME_STEP and done.any():
            for i in np.flatnonzero(done):
                flat[i] = spaces.flatten(self.env.single_observation_space, info["final_obs"][i])
        rows = {}
        for key in self._reward.info_keys():
            column = np.zeros(n, dtype=np.float32)
            have = np.zeros(n, dtype=bool)
            for source, use in ((info, np.ones(n, dtype=bool)), (final_info, done)):
                if key in source:
                    mask = np.asarray(source.get(f"_{key}", np.ones(n, dtype=bool))) & use
                    column[mask] = np.asarray(source[key])[mask]
                    have |= mask
            if not have[~self._resetting].all():
                raise _missing_info(key)
            rows[key] = column
        total, components = self._reward(flat, rows, actions, n)
        if self.mode == AutoresetMode.NEXT_STEP:
            total[self._resetting] = 0.0
            for c in components.values():
                c[self._resetting] = 0.0
            self._resetting = done.copy()
        info = {**info, "original_reward": original, "reward_components": components}
        return obs, total, terminated, truncated, info


def wrap(env: gymnasium.Env | VectorEnv, reward: RewardSource | Callable, variables: Any = ()):
    """``env`` with its reward replaced by ``reward`` (code, a ``.py`` path, a solve result, or a
    ``compute_reward`` function); each component goes into ``info["reward_components"]``.

    The reward code runs in this process with your rights (it is your env and your choice of
    reward); only ``rewardsmith solve`` runs model-written code, and only in a sandbox.

    >>> import gymnasium as gym
    >>> code = '''
    ... import torch
    ... def compute_reward(cos_theta, theta_dot):
    ...     upright = (cos_theta + 1) / 2
    ...     still = torch.exp(-theta_dot.abs())
    ...     return upright * still, {"upright": upright, "still": still}
    ... '''
    >>> env = wrap(gym.make("Pendulum-v1"), code)
    >>> _ = env.reset(seed=0)
    >>> obs, reward, terminated, truncated, info = env.step(env.action_space.sample())
    >>> sorted(info["reward_components"])
    ['still', 'upright']
    """
    if isinstance(env, VectorEnv):
        return VectorRewardWrapper(env, reward, variables)
    if isinstance(env, gymnasium.Env):
        return RewardWrapper(env, reward, variables)
    raise RewardsmithError(f"wrap needs a gymnasium Env or VectorEnv, not {type(env).__name__}")
