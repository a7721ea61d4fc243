"""Acrobot-v1's own reward, over rewardsmith's names: -1 for every step the tip is not yet above
the line one link length over the pivot (the episode ends when it is)."""

import torch


def compute_reward(tip_height: torch.Tensor):
    below = (tip_height <= 1.0).float()
    return -below, {"below": below}
