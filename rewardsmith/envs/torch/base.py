"""The base of the built-in torch envs: batched state on one device, no Python loop over envs."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

import torch

from ..base import StepResult
from ..description import ActionSpec, EnvDescription

if TYPE_CHECKING:
    import numpy as np

    from ..canvas import Canvas


class TorchVecEnv:
    """Base class for batched envs written in torch: state lives on one device, no Python loop.

    Subclasses set ``description`` and implement the ``_`` hooks on state tensors of shape
    ``(n, state_dim)``, and optionally ``draw`` for videos.
    """

    description: ClassVar[EnvDescription]

    def __init__(self, num_envs: int, device: str | torch.device = "cpu", seed: int = 0,
                 max_episode_steps: int | None = None, dtype: torch.dtype = torch.float32):
        if num_envs < 1:
            raise ValueError("num_envs must be at least 1")
        self.num_envs = num_envs
        self.device = torch.device(device)
        self.dtype = dtype
        self.max_episode_steps = max_episode_steps or self.description.max_episode_steps
        self.generator = torch.Generator(device=self.device)
        self.generator.manual_seed(seed)
        self._setup()
        self.state = self._sample_initial(num_envs)
        self.elapsed = torch.zeros(num_envs, dtype=torch.long, device=self.device)
        spec = self.description.action
        if spec.kind == "continuous":
            self.action_low = torch.tensor(spec.low, dtype=dtype, device=self.device)
            self.action_high = torch.tensor(spec.high, dtype=dtype, device=self.device)

    # -- hooks -------------------------------------------------------------------------------
    def _setup(self) -> None:
        """Make constant tensors on ``self.device`` (called before the first state is sampled)."""

    def _sample_initial(self, n: int) -> torch.Tensor:
        raise NotImplementedError

    def _advance(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _observe(self, state: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def _variables(self, state: torch.Tensor) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def _terminated(self, state: torch.Tensor) -> torch.Tensor:
        return torch.zeros(state.shape[0], dtype=torch.bool, device=state.device)

    # -- API ---------------------------------------------------------------------------------
    @property
    def obs_dim(self) -> int:
        return int(self._observe(self.state[:1]).shape[-1])

    @property
    def action_spec(self) -> ActionSpec:
        return self.description.action

    def rand(self, *shape: int) -> torch.Tensor:
        """Uniform [0, 1) numbers from the env's own generator."""
        return torch.rand(*shape, generator=self.generator, device=self.device, dtype=self.dtype)

    def reset(self) -> torch.Tensor:
        self.state = self._sample_initial(self.num_envs)
        self.elapsed.zero_()
        return self._observe(self.state)

    def variables(self) -> dict[str, torch.Tensor]:
        """Named variables of the current state."""
        return self._variables(self.state)

    def step(self, action: torch.Tensor) -> StepResult:
        if self.action_spec.kind == "continuous":
            action = torch.clamp(action.to(self.dtype), self.action_low, self.action_high)
            applied = action
        else:
            action = action.long()
            applied = action.to(self.dtype)
        new_state = self._advance(self.state, action)
        self.elapsed += 1
        terminated = self._terminated(new_state)
        truncated = (self.elapsed >= self.max_episode_steps) & ~terminated
        done = terminated | truncated
        variables = self._variables(new_state)
        final_obs = self._observe(new_state)
        # On a CPU, checking for ended episodes is free and lets most steps skip the reset; on a
        # GPU the check would stall the pipeline, so resets are always computed there.
        if self.device.type == "cpu" and not bool(done.any()):
            self.state = new_state
            return StepResult(final_obs, variables, applied, terminated, truncated, final_obs)
        self.state = torch.where(done[:, None], self._sample_initial(self.num_envs), new_state)
        self.elapsed.masked_fill_(done, 0)
        return StepResult(self._observe(self.state), variables, applied, terminated, truncated, final_obs)

    # -- pictures (for videos) ---------------------------------------------------------------
    def draw(self, canvas: Canvas, v: Mapping[str, Any]) -> None:
        """Draw one env's state on ``canvas`` (world units, y up; see :mod:`.canvas`).

        ``v`` holds that env's named variables as floats (lists for vector variables). Envs that
        leave this out are shown as a panel of their variables' values.
        """
        raise NotImplementedError

    def render(self, index: int = 0, variables: Mapping[str, torch.Tensor] | None = None) -> np.ndarray:
        """Env ``index`` as an RGB image ``(height, width, 3)`` ``uint8``.

        Shows the current state, or the batch ``variables`` when given (for example
        ``StepResult.variables``, the state before an automatic reset).
        """
        from ..canvas import Canvas, variables_panel

        batch = self.variables() if variables is None else variables
        v: dict[str, Any] = {name: value[index].tolist() for name, value in batch.items()}
        canvas = Canvas()
        try:
            self.draw(canvas, v)
        except NotImplementedError:
            scalars: dict[str, float] = {k: x for k, x in v.items() if isinstance(x, float)}
            bounds = {s.name: (s.low, s.high) for s in self.description.variables}
            return variables_panel(scalars, bounds, title=self.description.id)
        return canvas.array()
