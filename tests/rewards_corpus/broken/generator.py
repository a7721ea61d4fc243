# static: compute_reward yields, which makes it a generator
import torch


def compute_reward(pole_angle: torch.Tensor):
    upright = torch.exp(-pole_angle.abs())
    yield upright, {"upright": upright}
