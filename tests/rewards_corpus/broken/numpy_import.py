# static: imports 'numpy'; only torch, math and typing may be imported
import numpy as np
import torch


def compute_reward(pole_angle: torch.Tensor):
    upright = torch.as_tensor(np.cos(pole_angle.numpy()))
    return upright, {"upright": upright}
