"""Pendulum-v1's own reward, -(theta^2 + 0.1 theta_dot^2 + 0.001 u^2), from the variables gymnasium's
Pendulum-v1 and rewardsmith's torch Pendulum both have."""

import torch


def compute_reward(cos_theta: torch.Tensor, sin_theta: torch.Tensor, theta_dot: torch.Tensor, action: torch.Tensor):
    angle = torch.atan2(sin_theta, cos_theta).square()
    speed = 0.1 * theta_dot.square()
    effort = 0.001 * action[:, 0].square()
    return -(angle + speed + effort), {"angle": angle, "speed": speed, "effort": effort}
