# runs as: python
from __future__ import annotations

from typing import Dict

import torch


def compute_reward(pole_angle: torch.Tensor, cart_pos: torch.Tensor) -> tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    """Upright and centred: both terms in [0, 1], multiplied."""
    upright = torch.cos(pole_angle).clamp(min=0.0) ** 4
    centered = torch.exp(-cart_pos.square())
    parts: dict[str, torch.Tensor] = {"upright": upright, "centered": centered}
    return upright * centered, parts
