# static: 'np' is not defined
import torch


def compute_reward(pole_angle: torch.Tensor):
    upright = torch.as_tensor(np.cos(pole_angle.numpy()))
    return upright, {"upright": upright}
