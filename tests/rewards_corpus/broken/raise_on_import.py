# static: raises an exception as the module loads
import torch

raise RuntimeError("not finished")


def compute_reward(pole_angle: torch.Tensor):
    return pole_angle, {}
