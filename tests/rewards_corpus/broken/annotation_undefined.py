# static: 'ndarray' is not defined
import torch


def compute_reward(pole_angle: ndarray):
    upright = torch.exp(-pole_angle.abs())
    return upright, {"upright": upright}
