"""PPO training of a policy on a batched env with a reward function."""
