"""MountainCarContinuous-v0's own reward, over rewardsmith's names: 100 on reaching the flag
(position >= 0.45, which ends the episode) minus 0.1 times the squared push."""

import torch


def compute_reward(position: torch.Tensor, action: torch.Tensor):
    goal = (position >= 0.45).float()
    effort = action[:, 0].square()
    return 100.0 * goal - 0.1 * effort, {"goal": goal, "effort": effort}
