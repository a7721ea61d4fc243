"""CartPole's own reward (+1 for every step the pole is up), as a rewardsmith reward."""

import torch


def compute_reward(pole_angle: torch.Tensor):
    alive = torch.ones_like(pole_angle)
    return alive, {"alive": alive}
