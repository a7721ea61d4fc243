"""Batched Acrobot with the dynamics of gymnasium's ``Acrobot-v1`` (book equations, one RK4 step)."""

from __future__ import annotations

import math

import torch

from ..canvas import BLACK, BLUE, GREY
from .base import TorchVecEnv
from .catalog import ACROBOT

PI = math.pi


def _wrap(x: torch.Tensor) -> torch.Tensor:
    return torch.remainder(x + PI, 2 * PI) - PI


class Acrobot(TorchVecEnv):
    description = ACROBOT

    dt = 0.2
    m1 = m2 = 1.0
    l1 = 1.0
    lc1 = lc2 = 0.5
    moi = 1.0
    g = 9.8
    max_vel_1 = 4 * PI
    max_vel_2 = 9 * PI

    def _setup(self) -> None:
        self.torques = torch.tensor([-1.0, 0.0, 1.0], device=self.device, dtype=self.dtype)

    def _sample_initial(self, n: int) -> torch.Tensor:
        return self.rand(n, 4) * 0.2 - 0.1

    def _derivatives(self, s: torch.Tensor, torque: torch.Tensor) -> torch.Tensor:
        m1, m2, l1, lc1, lc2, i1, i2, g = self.m1, self.m2, self.l1, self.lc1, self.lc2, self.moi, self.moi, self.g
        theta1, theta2, dtheta1, dtheta2 = s.unbind(-1)
        cos2, sin2 = torch.cos(theta2), torch.sin(theta2)
        d1 = m1 * lc1 ** 2 + m2 * (l1 ** 2 + lc2 ** 2 + 2 * l1 * lc2 * cos2) + i1 + i2
        d2 = m2 * (lc2 ** 2 + l1 * lc2 * cos2) + i2
        phi2 = m2 * lc2 * g * torch.cos(theta1 + theta2 - PI / 2.0)
        phi1 = (-m2 * l1 * lc2 * dtheta2 ** 2 * sin2 - 2 * m2 * l1 * lc2 * dtheta2 * dtheta1 * sin2
                + (m1 * lc1 + m2 * l1) * g * torch.cos(theta1 - PI / 2) + phi2)
        ddtheta2 = ((torque + d2 / d1 * phi1 - m2 * l1 * lc2 * dtheta1 ** 2 * sin2 - phi2)
                    / (m2 * lc2 ** 2 + i2 - d2 ** 2 / d1))
        ddtheta1 = -(d2 * ddtheta2 + phi1) / d1
        return torch.stack((dtheta1, dtheta2, ddtheta1, ddtheta2), -1)

    def _advance(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        torque = self.torques[action]
        h = self.dt
        k1 = self._derivatives(state, torque)
        k2 = self._derivatives(state + h / 2 * k1, torque)
        k3 = self._derivatives(state + h / 2 * k2, torque)
        k4 = self._derivatives(state + h * k3, torque)
        s = state + h / 6.0 * (k1 + 2 * k2 + 2 * k3 + k4)
        theta1, theta2, dtheta1, dtheta2 = s.unbind(-1)
        return torch.stack((_wrap(theta1), _wrap(theta2), torch.clamp(dtheta1, -self.max_vel_1, self.max_vel_1),
                            torch.clamp(dtheta2, -self.max_vel_2, self.max_vel_2)), -1)

    def _tip_height(self, state: torch.Tensor) -> torch.Tensor:
        return -torch.cos(state[:, 0]) - torch.cos(state[:, 1] + state[:, 0])

    def _terminated(self, state: torch.Tensor) -> torch.Tensor:
        return self._tip_height(state) > 1.0

    def _observe(self, state: torch.Tensor) -> torch.Tensor:
        theta1, theta2, dtheta1, dtheta2 = state.unbind(-1)
        return torch.stack((torch.cos(theta1), torch.sin(theta1), torch.cos(theta2), torch.sin(theta2),
                            dtheta1, dtheta2), -1)

    def _variables(self, state: torch.Tensor) -> dict[str, torch.Tensor]:
        theta1, theta2, dtheta1, dtheta2 = state.unbind(-1)
        return {"theta1": theta1, "theta2": theta2, "theta1_dot": dtheta1, "theta2_dot": dtheta2,
                "tip_height": self._tip_height(state)}

    def draw(self, canvas, v) -> None:
        canvas.view(center=(0.0, 0.0), width=6.0)
        t1, t2 = v["theta1"], v["theta1"] + v["theta2"]  # from hanging straight down
        elbow = (self.l1 * math.sin(t1), -self.l1 * math.cos(t1))
        tip = (elbow[0] + math.sin(t2), elbow[1] - math.cos(t2))
        canvas.line((-2.2, 1.0), (2.2, 1.0), 0.02, GREY)  # the height to reach
        canvas.line((0.0, 0.0), elbow, 0.12, BLUE).line(elbow, tip, 0.12, BLUE)
        canvas.circle((0.0, 0.0), 0.06, BLACK).circle(elbow, 0.06, BLACK)
