"""HalfCheetah-v5's own reward turned round for running backwards (the env has no reward for
this behaviour; this is the one a person would write from it): the backward velocity minus 0.1
times the squared torques."""

import torch


def compute_reward(x_velocity: torch.Tensor, action: torch.Tensor):
    backward = -x_velocity
    effort = 0.1 * action.square().sum(-1)
    return backward - effort, {"backward": backward, "effort": effort}
