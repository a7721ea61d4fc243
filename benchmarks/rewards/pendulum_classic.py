"""Pendulum-v1's own reward, -(theta^2 + 0.1 theta_dot^2 + 0.001 u^2), as a rewardsmith reward."""

import torch


def compute_reward(theta: torch.Tensor, theta_dot: torch.Tensor, action: torch.Tensor):
    angle = theta.square()
    speed = 0.1 * theta_dot.square()
    effort = 0.001 * action[:, 0].square()
    return -(angle + speed + effort), {"angle": angle, "speed": speed, "effort": effort}
