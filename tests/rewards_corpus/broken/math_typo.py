# static: math has no attribute 'sqroot'
import math

import torch


def compute_reward(cart_pos: torch.Tensor):
    centered = torch.exp(-cart_pos.abs() / math.sqroot(2.0))
    return centered, {"centered": centered}
