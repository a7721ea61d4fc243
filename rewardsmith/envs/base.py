"""What every environment backend provides: a self-description and a batched step on one device.

An env describes itself with named state variables (shape, unit, meaning, typical range). Those
names are the arguments a reward function may take and the names fitness expressions use.

``step`` returns the named variables of the state *after* the step and *before* any automatic
reset, so rewards and fitness see the terminal state of an episode; ``obs`` is already the first
observation of the next episode for envs that were done (``final_obs`` keeps the last one, for
bootstrapping values at time limits).

The backends' envs: :class:`~rewardsmith.envs.torch.base.TorchVecEnv` (built-in torch envs),
:class:`~rewardsmith.envs.gymnasium.vec.GymVecEnv` and
:class:`~rewardsmith.envs.isaacgym.vectask.VecTaskAdapter`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    import numpy as np
    import torch

    from .description import ActionSpec, EnvDescription


@dataclass(frozen=True)
class StepResult:
    """One batched step. All tensors live on the env's device."""

    obs: torch.Tensor          # (n, obs_dim), after automatic reset of done envs
    variables: dict[str, torch.Tensor]  # named state after the step, before reset
    action: torch.Tensor       # the action as applied (clipped), float, for the reward
    terminated: torch.Tensor   # (n,) bool: the task ended (failure or goal)
    truncated: torch.Tensor    # (n,) bool: time limit reached and not terminated
    final_obs: torch.Tensor    # (n, obs_dim) observation of the state after the step, before reset



class VecEnv(Protocol):
    """The batched env the trainers, the dry run and the evaluation use (one device, tensors)."""

    description: EnvDescription
    num_envs: int
    device: torch.device
    max_episode_steps: int
    action_low: torch.Tensor   # continuous actions only
    action_high: torch.Tensor

    @property
    def obs_dim(self) -> int: ...
    @property
    def action_spec(self) -> ActionSpec: ...
    def reset(self) -> torch.Tensor: ...
    def step(self, action: torch.Tensor) -> StepResult: ...
    def render(self, index: int = 0) -> np.ndarray: ...
