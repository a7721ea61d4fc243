"""A planar two-link arm reaching for a random goal (rewardsmith's own; no gymnasium counterpart).

Rigid-body dynamics of a two-link arm in a horizontal plane (no gravity), with joint damping:
``M(q) q'' + C(q, q') q' + b q' = gear * u``, integrated with semi-implicit Euler in two
sub-steps per control step.
"""

from __future__ import annotations

import math

import torch

from ..canvas import BLACK, BLUE, RED
from .base import TorchVecEnv
from .catalog import REACHER


class Reacher(TorchVecEnv):
    description = REACHER

    l1 = l2 = 1.0          # link lengths (m)
    m1 = m2 = 1.0          # link masses (kg), uniform rods
    damping = 0.5          # N m s / rad
    gear = 5.0             # N m per unit of action
    max_vel = 10.0
    substeps = 2
    goal_radius = (0.3, 1.9)

    dt: float = REACHER.dt or 0.05
    # state: q1, q2, q1', q2', goal x, goal y

    def _sample_initial(self, n: int) -> torch.Tensor:
        q = self.rand(n, 2) * 0.2 - 0.1
        r0, r1 = self.goal_radius
        radius = torch.sqrt(r0 ** 2 + self.rand(n) * (r1 ** 2 - r0 ** 2))  # uniform over the annulus
        angle = self.rand(n) * 2 * math.pi
        goal = torch.stack((radius * torch.cos(angle), radius * torch.sin(angle)), -1)
        return torch.cat((q, torch.zeros_like(q), goal), -1)

    def _accelerations(self, q2: torch.Tensor, dq: torch.Tensor, torque: torch.Tensor) -> torch.Tensor:
        l1, lc1, lc2 = self.l1, self.l1 / 2, self.l2 / 2
        i1, i2 = self.m1 * self.l1 ** 2 / 12, self.m2 * self.l2 ** 2 / 12
        cos2, sin2 = torch.cos(q2), torch.sin(q2)
        m11 = i1 + i2 + self.m1 * lc1 ** 2 + self.m2 * (l1 ** 2 + lc2 ** 2 + 2 * l1 * lc2 * cos2)
        m12 = i2 + self.m2 * (lc2 ** 2 + l1 * lc2 * cos2)
        m22 = i2 + self.m2 * lc2 ** 2
        h = self.m2 * l1 * lc2 * sin2
        dq1, dq2 = dq.unbind(-1)
        r1 = torque[:, 0] - self.damping * dq1 + h * dq2 * (2 * dq1 + dq2)
        r2 = torque[:, 1] - self.damping * dq2 - h * dq1 ** 2
        det = m11 * m22 - m12 ** 2
        return torch.stack(((m22 * r1 - m12 * r2) / det, (m11 * r2 - m12 * r1) / det), -1)

    def _advance(self, state: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        q, dq, goal = state[:, 0:2], state[:, 2:4], state[:, 4:6]
        torque = action * self.gear
        h = self.dt / self.substeps
        for _ in range(self.substeps):
            dq = torch.clamp(dq + h * self._accelerations(q[:, 1], dq, torque), -self.max_vel, self.max_vel)
            q = q + h * dq
        q = torch.remainder(q + math.pi, 2 * math.pi) - math.pi
        return torch.cat((q, dq, goal), -1)

    def _fingertip(self, state: torch.Tensor) -> torch.Tensor:
        q1, q12 = state[:, 0], state[:, 0] + state[:, 1]
        return torch.stack((self.l1 * torch.cos(q1) + self.l2 * torch.cos(q12),
                            self.l1 * torch.sin(q1) + self.l2 * torch.sin(q12)), -1)

    def _observe(self, state: torch.Tensor) -> torch.Tensor:
        q, dq, goal = state[:, 0:2], state[:, 2:4], state[:, 4:6]
        return torch.cat((torch.cos(q), torch.sin(q), dq, goal, self._fingertip(state) - goal), -1)

    def _variables(self, state: torch.Tensor) -> dict[str, torch.Tensor]:
        tip, goal = self._fingertip(state), state[:, 4:6]
        return {"joint_angles": state[:, 0:2], "joint_vel": state[:, 2:4], "fingertip": tip, "goal": goal,
                "distance": torch.linalg.vector_norm(tip - goal, dim=-1)}

    def draw(self, canvas, v) -> None:
        canvas.view(center=(0.0, 0.0), width=(self.l1 + self.l2) * 2 * 4 / 3 + 0.4)
        q1 = v["joint_angles"][0]
        elbow, tip, goal = (self.l1 * math.cos(q1), self.l1 * math.sin(q1)), v["fingertip"], v["goal"]
        canvas.circle(tuple(goal), 0.08, RED)
        canvas.line((0.0, 0.0), elbow, 0.1, BLUE).line(elbow, tuple(tip), 0.1, BLUE)
        canvas.circle((0.0, 0.0), 0.07, BLACK).circle(elbow, 0.05, BLACK)
