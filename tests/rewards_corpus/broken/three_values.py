# static: returns 3 values
import torch


def compute_reward(pole_angle: torch.Tensor):
    upright = torch.exp(-pole_angle.abs())
    return upright, {"upright": upright}, 0
