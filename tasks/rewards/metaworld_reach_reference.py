"""Meta-World reach-v3's own dense reward (its v2 reward function), over rewardsmith's names.

The env computes ``10 * tolerance(|tcp - goal|, bounds=(0, 0.05), margin=|hand_init - goal|,
sigmoid="long_tail")`` (metaworld/envs/sawyer_reach_v3.py, reward_utils.tolerance with its
default value 0.1 at the margin). This reproduces it: the same numbers as the env's
``info["unscaled_reward"]`` (checked in tests/test_metaworld.py).
"""

import math

import torch


def _long_tail(x: torch.Tensor, radius: float, margin: torch.Tensor) -> torch.Tensor:
    """1 within ``radius``; beyond it 1 / (1 + (3 d / margin)^2): 0.1 at ``margin`` past the radius."""
    scale = math.sqrt(1.0 / 0.1 - 1.0)
    d = torch.relu(x - radius) / margin.clamp(min=1e-9)
    return torch.where(x <= radius, torch.ones_like(x), 1.0 / ((d * scale) ** 2 + 1.0))


def compute_reward(tcp_pos: torch.Tensor, goal_pos: torch.Tensor, hand_init_pos: torch.Tensor):
    distance = torch.linalg.vector_norm(tcp_pos - goal_pos, dim=-1)
    margin = torch.linalg.vector_norm(hand_init_pos - goal_pos, dim=-1)
    in_place = _long_tail(distance, 0.05, margin)
    return 10.0 * in_place, {"in_place": in_place, "distance": distance}
