"""Batched MountainCarContinuous with the dynamics of gymnasium's ``MountainCarContinuous-v0``."""

from __future__ import annotations

import math

import torch

from ..canvas import BLACK, GREEN, GREY
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

    def draw(self, canvas, v) -> None:
        canvas.view(center=(-0.3, 0.55), width=2.0)
        hill = lambda x: math.sin(3 * x) * 0.45 + 0.55  # noqa: E731
        xs = [self.min_position + i * (self.max_position - self.min_position) / 60 for i in range(61)]
        for a, b in zip(xs, xs[1:]):
            canvas.line((a, hill(a)), (b, hill(b)), 0.012, GREY)
        goal = MOUNTAIN_CAR_GOAL
        canvas.line((goal, hill(goal)), (goal, hill(goal) + 0.15), 0.01, BLACK)
        canvas.polygon([(goal, hill(goal) + 0.15), (goal + 0.08, hill(goal) + 0.125), (goal, hill(goal) + 0.1)], GREEN)
        x = v["position"]
        slope = math.atan(math.cos(3 * x) * 1.35)
        up = (-math.sin(slope) * 0.04, math.cos(slope) * 0.04)  # the car sits on the track
        canvas.rect((x + up[0], hill(x) + up[1]), (0.16, 0.07), BLACK, angle=slope)
