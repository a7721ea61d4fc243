# runs as: python
import math

import torch
import torch.nn.functional as F
from torch import Tensor

CART, POLE = 0, 1                  # columns of dof_pos and dof_vel
ANGLE_SCALE = 12 * math.pi / 180
TRACK_HALF = 3.0


def closeness(x: Tensor, scale: float) -> Tensor:
    """1 at zero, falling smoothly to about 0.37 at |x| = scale."""
    return torch.exp(-(x / scale) ** 2)


def margin(x: Tensor, limit: float) -> Tensor:
    return F.relu(1.0 - x.abs() / limit)


def compute_reward(dof_vel: Tensor, dof_pos: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
    upright = closeness(dof_pos[:, POLE], ANGLE_SCALE)
    centered = margin(dof_pos[:, CART], TRACK_HALF)
    spin = -0.01 * dof_vel[:, POLE].abs()
    return upright + 0.3 * centered + spin, {"upright": upright, "centered": centered, "spin": spin}
