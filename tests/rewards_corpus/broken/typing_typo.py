# static: typing has no name 'Tupel' to import
import torch
from typing import Dict, Tupel


def compute_reward(pole_angle: torch.Tensor) -> Tupel[torch.Tensor, Dict[str, torch.Tensor]]:
    upright = torch.exp(-pole_angle.abs())
    return upright, {"upright": upright}
