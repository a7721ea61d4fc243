"""Batched MountainCarContinuous with the dynamics of gymnasium's ``MountainCarContinuous-v0``."""

from __future__ import annotations

import torch

from .base import TorchVecEnv
from .catalog import MOUNTAIN_CAR_CONTINUOUS, MOUNTAIN_CAR_GOAL


class MountainCarContinuous(TorchVecEnv):
    description = MOUNTAIN_CAR_CONTINUOUS

    min_position = -1.2
    max_position = 0.6
    max_speed = 0.07
    power = 0.0015

    def _sample_initial(self, n: int) -> torch.Tensor:
        position = self.rand(n) * 0.2 - 0.6
        return torch.stack((position, torch.zeros_like(position)), -1)

    def _advance(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        position, velocity = state.unbind(-1)
        velocity = velocity + action[:, 0] * self.power - 0.0025 * torch.cos(3 * position)
        velocity = torch.clamp(velocity, -self.max_speed, self.max_speed)
        position = torch.clamp(position + velocity, self.min_position, self.max_position)
        # hitting the left wall stops the car
        velocity = torch.where((position == self.min_position) & (velocity < 0), 0.0, velocity)
        return torch.stack((position, velocity), -1)

    def _terminated(self, state: torch.Tensor) -> torch.Tensor:
        return (state[:, 0] >= MOUNTAIN_CAR_GOAL) & (state[:, 1] >= 0)

    def _observe(self, state: torch.Tensor) -> torch.Tensor:
        return state

    def _variables(self, state: torch.Tensor) -> dict[str, torch.Tensor]:
        position, velocity = state.unbind(-1)
        return {"position": position, "velocity": velocity, "height": torch.sin(3 * position) * 0.45 + 0.55}
