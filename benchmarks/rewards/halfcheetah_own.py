"""HalfCheetah-v5's own reward: forward velocity minus 0.1 times the squared torques."""

import torch


def compute_reward(x_velocity: torch.Tensor, action: torch.Tensor):
    effort = 0.1 * action.square().sum(-1)
    return x_velocity - effort, {"forward": x_velocity, "effort": effort}
