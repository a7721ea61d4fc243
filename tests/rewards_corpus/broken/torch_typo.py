# dry run: module 'torch' has no attribute 'expp'
import torch


def compute_reward(pole_angle: torch.Tensor):
    upright = torch.expp(-pole_angle.abs())
    return upright, {"upright": upright}
