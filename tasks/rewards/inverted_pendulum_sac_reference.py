"""InvertedPendulum-v5's own reward: 1 for every step the pole is up (within 0.2 rad of vertical;
the env ends the episode when it is not), over the task's names."""

import torch


def compute_reward(pole_angle: torch.Tensor):
    alive = (pole_angle.abs() <= 0.2).float()
    return alive, {"alive": alive}
