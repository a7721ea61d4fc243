"""Reacher-v5's own reward, -(distance fingertip to target) - |action|^2, over its model-derived names."""

import torch


def compute_reward(fingertip_rel_target_xy: torch.Tensor, action: torch.Tensor):
    distance = torch.linalg.vector_norm(fingertip_rel_target_xy, dim=-1)
    effort = action.square().sum(-1)
    return -distance - effort, {"distance": distance, "effort": effort}
