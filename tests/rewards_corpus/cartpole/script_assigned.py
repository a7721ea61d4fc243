# runs as: torchscript
import torch
from typing import Dict, Tuple


def compute_reward(pole_angle: torch.Tensor, pole_vel: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    balance = 1.0 - torch.tanh(torch.abs(pole_angle) * 5.0)
    damping = -0.02 * torch.abs(pole_vel)
    return balance + damping, {"balance": balance, "damping": damping}


compute_reward = torch.jit.script(compute_reward)
