# Never returns.
import torch


def compute_reward(pole_angle: torch.Tensor):
    n = 0
    while True:
        n += 1
    return pole_angle, {}
