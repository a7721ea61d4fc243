# runs as: torchscript
import torch
from typing import Dict, Tuple


def compute_reward(dof_pos: torch.Tensor, dof_vel: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    balance = 1.0 - torch.tanh(torch.abs(dof_pos[:, 1]) * 5.0)
    damping = -0.02 * torch.abs(dof_vel[:, 1])
    return balance + damping, {"balance": balance, "damping": damping}


compute_reward = torch.jit.script(compute_reward)
