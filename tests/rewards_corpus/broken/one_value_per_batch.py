# dry run: one value per env
import torch


@torch.jit.script
def compute_reward(pole_angle: torch.Tensor):
    upright = torch.exp(-pole_angle.abs()).mean()
    return upright, {"upright": upright}
