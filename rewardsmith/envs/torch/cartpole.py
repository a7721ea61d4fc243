"""Batched CartPole with the dynamics of gymnasium's ``CartPole-v1`` (Euler integration)."""

from __future__ import annotations

import math
from typing import Any

import torch

from ..canvas import BLACK, BLUE, ORANGE, RED
from .base import TorchVecEnv
from .catalog import CARTPOLE, THETA_LIMIT, X_LIMIT


class CartPole(TorchVecEnv):
    description = CARTPOLE

    gravity = 9.8
    masscart = 1.0
    masspole = 0.1
    total_mass = masscart + masspole
    length = 0.5  # half the pole's length
    polemass_length = masspole * length
    force_mag = 10.0
    tau = 0.02

    def _setup(self) -> None:
        kw: dict[str, Any] = {"device": self.device, "dtype": self.dtype}
        # force / total_mass for action 0 (left) and 1 (right)
        self.force_per_mass = torch.tensor([-self.force_mag, self.force_mag], **kw) / self.total_mass
        self.denominator_base = torch.tensor(self.length * 4.0 / 3.0, **kw)
        self.limits = torch.tensor([X_LIMIT, THETA_LIMIT], **kw)

    def _sample_initial(self, n: int) -> torch.Tensor:
        return self.rand(n, 4) * 0.1 - 0.05

    def _advance(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        # gymnasium's equations, written with fused multiply-adds (few ops = fast on small batches)
        x, x_dot, theta, theta_dot = state.unbind(-1)
        costheta, sintheta = torch.cos(theta), torch.sin(theta)
        temp = torch.addcmul(self.force_per_mass[action], theta_dot.square(), sintheta,
                             value=self.polemass_length / self.total_mass)
        numerator = torch.addcmul(sintheta * self.gravity, costheta, temp, value=-1.0)
        denominator = torch.addcmul(self.denominator_base, costheta, costheta,
                                    value=-self.length * self.masspole / self.total_mass)
        thetaacc = numerator / denominator
        xacc = torch.addcmul(temp, thetaacc, costheta, value=-self.polemass_length / self.total_mass)
        # Euler: positions move with the old velocities, velocities with the accelerations
        return torch.add(state, torch.stack((x_dot, xacc, theta_dot, thetaacc), -1), alpha=self.tau)

    def _terminated(self, state: torch.Tensor) -> torch.Tensor:
        return (state[:, 0::2].abs() > self.limits).any(-1)

    def _observe(self, state: torch.Tensor) -> torch.Tensor:
        return state

    def _variables(self, state: torch.Tensor) -> dict[str, torch.Tensor]:
        x, x_dot, theta, theta_dot = state.unbind(-1)
        return {"cart_pos": x, "cart_vel": x_dot, "pole_angle": theta, "pole_vel": theta_dot}

    def draw(self, canvas, v) -> None:
        x, theta = v["cart_pos"], v["pole_angle"]
        canvas.view(center=(0.0, 0.7), width=2 * X_LIMIT + 0.8)
        canvas.line((-X_LIMIT - 0.3, 0.0), (X_LIMIT + 0.3, 0.0), 0.02, BLACK)
        for end in (-X_LIMIT, X_LIMIT):  # where the episode ends
            canvas.line((end, -0.12), (end, 0.12), 0.03, RED)
        canvas.rect((x, 0.0), (0.4, 0.24), BLACK)
        pole = 2 * self.length
        canvas.line((x, 0.06), (x + pole * math.sin(theta), 0.06 + pole * math.cos(theta)), 0.08, ORANGE)
        canvas.circle((x, 0.06), 0.04, BLUE)
