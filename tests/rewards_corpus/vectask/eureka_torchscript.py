# runs as: torchscript
import torch
from typing import Tuple, Dict


@torch.jit.script
def compute_reward(dof_pos: torch.Tensor, dof_vel: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    # Extract the cart and pole states
    cart_pos = dof_pos[:, 0]
    pole_angle = dof_pos[:, 1]
    pole_vel = dof_vel[:, 1]

    # Temperatures for the exponential shaping of each term
    upright_temp: float = 0.2
    centered_temp: float = 1.0

    upright_reward = torch.exp(-torch.abs(pole_angle) / upright_temp)
    centered_reward = torch.exp(-torch.abs(cart_pos) / centered_temp)
    velocity_penalty = -0.01 * torch.abs(pole_vel)

    total_reward = upright_reward * centered_reward + velocity_penalty
    reward_dict: Dict[str, torch.Tensor] = {
        "upright_reward": upright_reward,
        "centered_reward": centered_reward,
        "velocity_penalty": velocity_penalty,
    }
    return total_reward, reward_dict
