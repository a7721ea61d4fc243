"""InvertedPendulum-v5's own reward, +1 for every step the pole stays up, as a rewardsmith reward."""

import torch


def compute_reward(reward_survive: torch.Tensor):
    return reward_survive, {"alive": reward_survive}
