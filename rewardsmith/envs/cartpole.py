"""Batched CartPole with the dynamics of gymnasium's ``CartPole-v1`` (Euler integration)."""

from __future__ import annotations

import torch

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

    def _sample_initial(self, n: int) -> torch.Tensor:
        return self.rand(n, 4) * 0.1 - 0.05

    def _advance(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        x, x_dot, theta, theta_dot = state.unbind(-1)
        force = (action.to(state.dtype) * 2 - 1) * self.force_mag
        costheta, sintheta = torch.cos(theta), torch.sin(theta)
        temp = (force + self.polemass_length * theta_dot.square() * sintheta) / self.total_mass
        thetaacc = (self.gravity * sintheta - costheta * temp) / (
            self.length * (4.0 / 3.0 - self.masspole * costheta.square() / self.total_mass))
        xacc = temp - self.polemass_length * thetaacc * costheta / self.total_mass
        return torch.stack((x + self.tau * x_dot, x_dot + self.tau * xacc,
                            theta + self.tau * theta_dot, theta_dot + self.tau * thetaacc), dim=-1)

    def _terminated(self, state: torch.Tensor) -> torch.Tensor:
        return (state[:, 0].abs() > X_LIMIT) | (state[:, 2].abs() > THETA_LIMIT)

    def _observe(self, state: torch.Tensor) -> torch.Tensor:
        return state

    def _variables(self, state: torch.Tensor) -> dict[str, torch.Tensor]:
        x, x_dot, theta, theta_dot = state.unbind(-1)
        return {"cart_pos": x, "cart_vel": x_dot, "pole_angle": theta, "pole_vel": theta_dot}
