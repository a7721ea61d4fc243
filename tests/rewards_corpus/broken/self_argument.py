# static: unknown argument 'self'
import torch


@torch.jit.script
def compute_reward(self, pole_angle: torch.Tensor):
    upright = torch.exp(-pole_angle.abs())
    return upright, {"upright": upright}
