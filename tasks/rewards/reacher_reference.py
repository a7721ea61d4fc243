"""Gymnasium Reacher's own reward on rewardsmith's torch Reacher: minus the fingertip's distance to
the goal, minus the squared torques."""

import torch


def compute_reward(distance: torch.Tensor, action: torch.Tensor):
    effort = action.square().sum(-1)
    return -distance - effort, {"distance": distance, "effort": effort}
