"""Meta-World handle-press-v3's own dense reward (its v2 reward function), over rewardsmith's names.

From metaworld/envs/sawyer_handle_press_v3.py: how far the handle is above its pressed height
(a long-tail tolerance) combined (Hamacher product) with the fingertips' closeness to the handle;
1 once the handle is within 2 cm of the pressed height; all times 10. The env measures the
fingertips' distance at the start from the handle's start, which sits 9.6 cm straight above the
goal in every layout, so this uses ``goal_pos + (0, 0, 0.096)`` for it: it reproduces the env's
``info["unscaled_reward"]`` (checked in tests/test_metaworld.py).
"""

import math

import torch

TARGET_RADIUS = 0.02
HANDLE_RADIUS = 0.02
HANDLE_TRAVEL = 0.096   # the handle's start above the goal (metaworld: maxDist)


def _long_tail(x: torch.Tensor, radius: float, margin: torch.Tensor) -> torch.Tensor:
    scale = math.sqrt(1.0 / 0.1 - 1.0)
    d = torch.relu(x - radius) / margin.clamp(min=1e-9)
    return torch.where(x <= radius, torch.ones_like(x), 1.0 / ((d * scale) ** 2 + 1.0))


def _hamacher(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    denominator = a + b - a * b
    return torch.where(denominator > 0, a * b / denominator.clamp(min=1e-12), torch.zeros_like(a))


def compute_reward(obj_pos: torch.Tensor, goal_pos: torch.Tensor, tcp_pos: torch.Tensor, init_tcp_pos: torch.Tensor):
    target_to_obj = (obj_pos[:, 2] - goal_pos[:, 2]).abs()
    in_place = _long_tail(target_to_obj, TARGET_RADIUS, torch.full_like(target_to_obj, abs(HANDLE_TRAVEL - TARGET_RADIUS)))
    handle_start = goal_pos + torch.tensor([0.0, 0.0, HANDLE_TRAVEL], dtype=goal_pos.dtype)
    tcp_to_obj = torch.linalg.vector_norm(obj_pos - tcp_pos, dim=-1)
    tcp_to_obj_init = torch.linalg.vector_norm(handle_start - init_tcp_pos, dim=-1)
    reach = _long_tail(tcp_to_obj, HANDLE_RADIUS, (tcp_to_obj_init - HANDLE_RADIUS).abs())
    reward = _hamacher(reach, in_place)
    reward = torch.where(target_to_obj <= TARGET_RADIUS, torch.ones_like(reward), reward)
    return 10.0 * reward, {"in_place": in_place, "reach": reach}
