# Behaves during the dry run, then returns NaN.
import torch

calls = [0]


def compute_reward(pole_angle: torch.Tensor):
    calls[0] += 1
    if calls[0] > 40:  # the dry run makes 32 calls
        return pole_angle * float("nan"), {}
    return torch.exp(-pole_angle.abs()), {}
