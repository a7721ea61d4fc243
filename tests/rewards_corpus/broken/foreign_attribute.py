# static: unknown argument 'root_states'
import torch
from typing import Dict, Tuple


@torch.jit.script
def compute_reward(root_states: torch.Tensor, pole_angle: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    height = root_states[:, 2]
    return height, {"height": height}
