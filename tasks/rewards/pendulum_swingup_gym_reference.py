"""Pendulum-v1's own reward, -(theta^2 + 0.1 theta_dot^2 + 0.001 u^2), over the gymnasium env's
names (theta, 0 upright, from its cosine and sine)."""

import torch


def compute_reward(cos_theta: torch.Tensor, sin_theta: torch.Tensor, theta_dot: torch.Tensor, action: torch.Tensor):
    theta = torch.atan2(sin_theta, cos_theta)
    angle = theta.square()
    speed = 0.1 * theta_dot.square()
    effort = 0.001 * action[:, 0].square()
    return -(angle + speed + effort), {"angle": angle, "speed": speed, "effort": effort}
