"""InvertedDoublePendulum-v5's own reward: 10 for every step the tip stays above 1 m, minus the
tip's distance from (0, 2) and the hinges' speeds (the env's info terms, already negative)."""

import torch


def compute_reward(reward_survive: torch.Tensor, distance_penalty: torch.Tensor, velocity_penalty: torch.Tensor):
    total = reward_survive + distance_penalty + velocity_penalty
    return total, {"alive": reward_survive, "distance": distance_penalty, "velocity": velocity_penalty}
