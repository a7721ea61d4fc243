# Takes memory until something stops it: 256 MB at a time, every page touched.
import torch

hoard = []


def compute_reward(pole_angle: torch.Tensor):
    while True:
        hoard.append(torch.ones(64 * 1024 * 1024))
    return pole_angle, {}
