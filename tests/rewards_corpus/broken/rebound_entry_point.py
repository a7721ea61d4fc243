# static: assigns to compute_reward; define it once, with def
import torch


def compute_reward(pole_angle: torch.Tensor):
    upright = torch.exp(-pole_angle.abs())
    return upright, {"upright": upright}


compute_reward = None
