"""A gymnasium vector env behind rewardsmith's batched env interface (:class:`~rewardsmith.envs.base.VecEnv`).

Gymnasium steps in numpy on the CPU; the trainer wants torch tensors on one device. This class
converts once per step, in one copy: observations, final observations and the ``info`` values
that name variables are packed into one float32 array and moved together.

Autoreset uses gymnasium's ``SAME_STEP`` mode: a step that ends an episode returns the first
observation of the next one, with the last observation in ``info["final_obs"]`` and the step's
``info`` in ``info["final_info"]``. The named ``variables`` are built from those, so rewards
and fitness see the state after the step and before the reset, as the contract says.
"""

from __future__ import annotations

from functools import partial
from typing import Any

import numpy as np
import torch

from ..base import StepResult
from ..description import ActionSpec, EnvDescription
from .layout import GymLayout
from .make import make_single
from .mujoco import PACKED_INFO_KEY


class GymVecEnv:
    def __init__(self, env_id: str, layout: GymLayout, num_envs: int, device: str | torch.device = "cpu",
                 seed: int = 0, max_episode_steps: int | None = None, make_kwargs: dict | None = None,
                 vectorization: str = "sync"):
        from gymnasium.vector import AsyncVectorEnv, AutoresetMode, SyncVectorEnv

        if num_envs < 1:
            raise ValueError("num_envs must be at least 1")
        self.layout = layout
        self.description: EnvDescription = layout.description
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.dtype = torch.float32
        self.max_episode_steps = max_episode_steps or self.description.max_episode_steps
        factory = partial(make_single, env_id, dict(make_kwargs or {}), self.max_episode_steps, layout.flatten,
                          layout.wrappers)
        vector_cls = AsyncVectorEnv if vectorization == "async" else SyncVectorEnv
        self.venv = vector_cls([factory] * num_envs, autoreset_mode=AutoresetMode.SAME_STEP)
        self.obs_dim = layout.obs_dim
        self._seed: int | None = seed
        self._needs_reset = True  # like the torch envs, stepping before reset() is allowed
        variables = layout.description.variables
        self._obs_vars = [(v.name, v.obs) for v in variables if v.obs is not None]
        # model quantities arrive as one array (mujoco.ModelStateInfo, packed): key -> its slice of it
        model = {spec[0]: spec for name, args in layout.wrappers if name == "model_state" for spec in args[0]}
        offsets, at = {}, 0
        for key, spec in model.items():
            size = int(np.prod(spec[3])) if spec[3] else 1
            offsets[key], at = (at, at + size), at + size
        self._model_size = at
        # info variables, each with its place in the packed row: (name, key, shape, start, stop, model slice)
        self._info_vars = []
        start = 2 * self.obs_dim
        for v in variables:
            if v.info is not None:
                size = int(np.prod(v.shape)) if v.shape else 1
                self._info_vars.append((v.name, v.info, tuple(v.shape), start, start + size, offsets.get(v.info)))
                start += size
        self._packed_width = start + 2
        spec = self.action_spec
        if spec.kind == "continuous":
            self.action_low = torch.tensor(spec.low, dtype=self.dtype, device=self.device)
            self.action_high = torch.tensor(spec.high, dtype=self.dtype, device=self.device)

    @property
    def action_spec(self) -> ActionSpec:
        return self.description.action

    def _to_device(self, array: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).to(self.device)

    def reset(self) -> torch.Tensor:
        # the first reset seeds env i with seed + i; later resets continue their random streams
        obs, _ = self.venv.reset(seed=self._seed)
        self._seed, self._needs_reset = None, False
        return self._to_device(obs.reshape(self.num_envs, -1))

    def step(self, action: torch.Tensor) -> StepResult:
        if self._needs_reset:
            self.reset()
        if self.action_spec.kind == "continuous":
            applied = torch.clamp(action.to(self.dtype), self.action_low, self.action_high)
            np_action = applied.detach().cpu().numpy()
        else:
            np_action = action.detach().long().cpu().numpy()
            applied = action.detach().to(self.dtype)
        obs, _reward, terminated, truncated, info = self.venv.step(np_action)
        n = self.num_envs
        obs = obs.reshape(n, -1)
        done = np.logical_or(terminated, truncated)
        final_obs = obs
        if done.any():
            final_obs = obs.copy()
            finals = info["final_obs"]
            for i in np.flatnonzero(done):
                final_obs[i] = np.asarray(finals[i]).reshape(-1)
        packed = np.empty((n, self._packed_width), dtype=np.float32)
        packed[:, : self.obs_dim] = obs
        packed[:, self.obs_dim: 2 * self.obs_dim] = final_obs
        base = 2 * self.obs_dim
        final_info = info.get("final_info", {})
        if self._model_size:
            model = _info_column(info, final_info, PACKED_INFO_KEY, done, n, self._model_size)
        for _, key, _shape, start, stop, in_model in self._info_vars:
            if in_model is not None:
                packed[:, start:stop] = model[:, in_model[0]:in_model[1]]
            else:
                packed[:, start:stop] = _info_column(info, final_info, key, done, n, stop - start)
        packed[:, -2] = terminated
        packed[:, -1] = truncated
        tensor = self._to_device(packed)
        next_obs, last_obs = tensor[:, : self.obs_dim], tensor[:, self.obs_dim: base]
        variables = {}
        for name, where in self._obs_vars:
            variables[name] = last_obs[:, where[0]:where[1]] if isinstance(where, tuple) else last_obs[:, where]
        for name, _, shape, start, stop, _ in self._info_vars:
            variables[name] = tensor[:, start:stop].reshape(n, *shape) if shape else tensor[:, start]
        term = tensor[:, -2] > 0.5
        trunc = (tensor[:, -1] > 0.5) & ~term
        return StepResult(next_obs, variables, applied, term, trunc, last_obs)

    def render(self, index: int = 0) -> np.ndarray:
        """Env ``index`` as an RGB image, for videos (the env must be made with ``render_mode="rgb_array"``)."""
        envs = getattr(self.venv, "envs", None)  # SyncVectorEnv; AsyncVectorEnv renders them all
        frames: Any = envs[index].render() if envs is not None else self.venv.render()[index]  # type: ignore[index]
        return np.asarray(frames)

    def close(self) -> None:
        self.venv.close()

    def __del__(self):  # AsyncVectorEnv workers must not outlive the env
        venv = getattr(self, "venv", None)
        if venv is not None and not getattr(venv, "closed", True):
            try:
                venv.close()
            except Exception:
                pass


def _info_column(info: dict, final_info: dict, key: str, done: np.ndarray, n: int, size: int = 1) -> np.ndarray:
    """Per env: ``info[key]`` of this step (``size`` numbers each), taken from ``final_info`` for
    envs that just reset."""
    column = np.zeros((n, size), dtype=np.float32)
    if key in info:
        mask = info.get(f"_{key}", np.ones(n, dtype=bool))
        column[mask] = np.asarray(info[key][mask], dtype=np.float32).reshape(-1, size)
    if done.any() and key in final_info:
        mask = final_info.get(f"_{key}", np.ones(n, dtype=bool)) & done
        column[mask] = np.asarray(final_info[key][mask], dtype=np.float32).reshape(-1, size)
    return column
