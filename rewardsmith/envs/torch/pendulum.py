"""Batched Pendulum with the dynamics of gymnasium's ``Pendulum-v1``."""

from __future__ import annotations

import math

import torch

from ..canvas import BLACK, RED
from .base import TorchVecEnv
from .catalog import PENDULUM


class Pendulum(TorchVecEnv):
    description = PENDULUM

    max_speed = 8.0
    dt = 0.05
    g = 10.0
    m = 1.0
    length = 1.0

    def _setup(self) -> None:
        self.start_high = torch.tensor([math.pi, 1.0], device=self.device, dtype=self.dtype)

    def _sample_initial(self, n: int) -> torch.Tensor:
        return (self.rand(n, 2) * 2 - 1) * self.start_high

    def _advance(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        theta, theta_dot = state.unbind(-1)
        accel = torch.add(torch.sin(theta) * (3 * self.g / (2 * self.length)), action[:, 0],
                          alpha=3.0 / (self.m * self.length ** 2))
        theta_dot = torch.clamp(theta_dot + accel * self.dt, -self.max_speed, self.max_speed)
        return torch.stack((theta + theta_dot * self.dt, theta_dot), -1)

    def _observe(self, state: torch.Tensor) -> torch.Tensor:
        theta, theta_dot = state.unbind(-1)
        return torch.stack((torch.cos(theta), torch.sin(theta), theta_dot), -1)

    def _variables(self, state: torch.Tensor) -> dict[str, torch.Tensor]:
        theta, theta_dot = state.unbind(-1)
        return {"cos_theta": torch.cos(theta), "sin_theta": torch.sin(theta), "theta_dot": theta_dot,
                "theta": torch.remainder(theta + math.pi, 2 * math.pi) - math.pi}

    def draw(self, canvas, v) -> None:
        canvas.view(center=(0.0, 0.0), width=3.2)
        tip = (self.length * math.sin(v["theta"]), self.length * math.cos(v["theta"]))  # 0 is upright
        canvas.line((0.0, 0.0), tip, 0.2, RED)
        canvas.circle((0.0, 0.0), 0.06, BLACK)
