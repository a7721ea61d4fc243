# runs as: torchscript
import torch
from typing import Tuple, Dict


@torch.jit.script
def compute_reward(pole_angle: torch.Tensor, cart_pos: torch.Tensor, pole_vel: torch.Tensor
                   ) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    # Temperatures for the exponential shaping of each term
    upright_temp: float = 0.2
    centered_temp: float = 2.4
    calm_weight: float = 0.05

    upright_reward = torch.exp(-torch.abs(pole_angle) / upright_temp)
    centered_reward = torch.exp(-torch.abs(cart_pos) / centered_temp)
    calm_penalty = -calm_weight * torch.square(pole_vel)

    total_reward = upright_reward * centered_reward + calm_penalty
    reward_dict: Dict[str, torch.Tensor] = {
        "upright_reward": upright_reward,
        "centered_reward": centered_reward,
        "calm_penalty": calm_penalty,
    }
    return total_reward, reward_dict
