# Reads address 0 through ctypes: a real segmentation fault.
import torch


def compute_reward(pole_angle: torch.Tensor):
    torch.ctypes.string_at(0)
    return pole_angle, {}
