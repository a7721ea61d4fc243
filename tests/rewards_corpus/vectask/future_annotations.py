# runs as: python
from __future__ import annotations

from typing import Dict

import torch


def compute_reward(dof_pos: torch.Tensor, action: torch.Tensor) -> tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    """Upright and centred, with a small cost for effort."""
    upright = torch.cos(dof_pos[:, 1]).clamp(min=0.0) ** 4
    centered = torch.exp(-dof_pos[:, 0].square())
    effort = action.square().sum(dim=-1)
    parts: dict[str, torch.Tensor] = {"upright": upright, "centered": centered, "effort": effort}
    return upright * centered - 0.01 * effort, parts
