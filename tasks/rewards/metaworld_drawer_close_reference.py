"""Meta-World drawer-close-v3's own dense reward (its v2 reward function), over rewardsmith's names.

From metaworld/envs/sawyer_drawer_close_v3.py: the handle's distance to its closed position,
shaped with a long-tail tolerance, combined (Hamacher product) with the fingertips' closeness to
the handle (a Gaussian tolerance) times the gripper command; 1 once the handle is within
6.5 cm of the goal; all times 10. This reproduces it (checked against the env's
``info["unscaled_reward"]`` in tests/test_metaworld.py).
"""

import math

import torch

TARGET_RADIUS = 0.05   # SawyerXYZEnv.TARGET_RADIUS (the class's own _TARGET_RADIUS = 0.04 is unused)
HANDLE_REACH_RADIUS = 0.005


def _tolerance(x: torch.Tensor, radius: float, margin: torch.Tensor, sigmoid: str) -> torch.Tensor:
    """Meta-World's reward_utils.tolerance with bounds (0, radius) and 0.1 at ``margin``."""
    d = torch.relu(x - radius) / margin.clamp(min=1e-9)
    if sigmoid == "gaussian":
        scale = math.sqrt(-2.0 * math.log(0.1))
        value = torch.exp(-0.5 * (d * scale) ** 2)
    else:  # long_tail
        scale = math.sqrt(1.0 / 0.1 - 1.0)
        value = 1.0 / ((d * scale) ** 2 + 1.0)
    return torch.where(x <= radius, torch.ones_like(x), value)


def _hamacher(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    denominator = a + b - a * b
    return torch.where(denominator > 0, a * b / denominator.clamp(min=1e-12), torch.zeros_like(a))


def compute_reward(obj_pos: torch.Tensor, goal_pos: torch.Tensor, tcp_pos: torch.Tensor, obj_init_pos: torch.Tensor,
                   init_tcp_pos: torch.Tensor, action: torch.Tensor):
    target_to_obj = torch.linalg.vector_norm(obj_pos - goal_pos, dim=-1)
    target_to_obj_init = torch.linalg.vector_norm(obj_init_pos - goal_pos, dim=-1)
    in_place = _tolerance(target_to_obj, TARGET_RADIUS, (target_to_obj_init - TARGET_RADIUS).abs(), "long_tail")
    tcp_to_obj = torch.linalg.vector_norm(obj_pos - tcp_pos, dim=-1)
    tcp_to_obj_init = torch.linalg.vector_norm(obj_init_pos - init_tcp_pos, dim=-1)
    reach = _tolerance(tcp_to_obj, HANDLE_REACH_RADIUS, (tcp_to_obj_init - HANDLE_REACH_RADIUS).abs(), "gaussian")
    gripper_closed = action[:, -1].clamp(0.0, 1.0)
    reach = _hamacher(reach, gripper_closed)
    reward = _hamacher(reach, in_place)
    reward = torch.where(target_to_obj <= TARGET_RADIUS + 0.015, torch.ones_like(reward), reward)
    return 10.0 * reward, {"in_place": in_place, "reach": reach}
