"""The example VecTask cart-pole's own reward (rewardsmith/envs/isaacgym/example.py, after
IsaacGymEnvs' Cartpole): 1 - pole_angle^2 - 0.01 |pole angular velocity|."""

import torch


def compute_reward(dof_pos: torch.Tensor, dof_vel: torch.Tensor):
    upright = 1.0 - dof_pos[:, 1].square()
    spin = 0.01 * dof_vel[:, 1].abs()
    return upright - spin, {"upright": upright, "spin": spin}
