# static: from __future__ imports must occur at the beginning of the file
import torch
from __future__ import annotations


def compute_reward(pole_angle: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    upright = torch.exp(-pole_angle.abs())
    return upright, {"upright": upright}
