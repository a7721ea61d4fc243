# dry run: NaN or infinite
import torch
from typing import Dict, Tuple


@torch.jit.script
def compute_reward(pole_angle: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    closeness = torch.log(pole_angle)
    return closeness, {"closeness": closeness}
