"""A hand-written reward for spinning the torch Pendulum counter-clockwise: the angular velocity
itself (more is better, either direction counts against), minus a little effort."""

import torch


def compute_reward(theta_dot: torch.Tensor, action: torch.Tensor):
    spin = theta_dot / 8.0
    effort = 0.001 * action[:, 0].square()
    return spin - effort, {"spin": spin, "effort": effort}
