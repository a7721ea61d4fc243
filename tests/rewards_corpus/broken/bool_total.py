# dry run: expected a float tensor
import torch


def compute_reward(pole_angle: torch.Tensor):
    upright = pole_angle.abs() < 0.1
    return upright, {"upright": upright.float()}
