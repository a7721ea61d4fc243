# runs as: python
import torch
from typing import Dict, Tuple


@torch.jit.script
def compute_reward(dof_pos: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    shape = lambda x, temperature: torch.exp(-torch.abs(x) / temperature)
    upright = shape(dof_pos[:, 1], 0.2)
    centered = shape(dof_pos[:, 0], 1.0)
    return upright + 0.2 * centered, {"upright": upright, "centered": centered}
