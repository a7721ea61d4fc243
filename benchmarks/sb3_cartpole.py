"""Stable-Baselines3 PPO on CartPole-v1 with rl-baselines3-zoo's tuned settings, until the mean
evaluation return reaches 475 (the same bar as rewardsmith's fitness 0.95). Prints one JSON line.

    python benchmarks/sb3_cartpole.py --seed 0
"""

import argparse
import json
import time

START = time.perf_counter()

from stable_baselines3 import PPO  # noqa: E402
from stable_baselines3.common.callbacks import EvalCallback, StopTrainingOnRewardThreshold  # noqa: E402
from stable_baselines3.common.env_util import make_vec_env  # noqa: E402


def linear(start: float):
    return lambda progress_remaining: progress_remaining * start


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--eval-episodes", type=int, default=16)
    args = parser.parse_args()
    env = make_vec_env("CartPole-v1", n_envs=8, seed=args.seed)
    eval_env = make_vec_env("CartPole-v1", n_envs=1, seed=args.seed + 1000)
    # rl-baselines3-zoo hyperparams/ppo.yml, CartPole-v1
    model = PPO("MlpPolicy", env, n_steps=32, batch_size=256, gae_lambda=0.8, gamma=0.98, n_epochs=20,
                ent_coef=0.0, learning_rate=linear(0.001), clip_range=linear(0.2), seed=args.seed,
                device="cpu", verbose=0)
    stop = StopTrainingOnRewardThreshold(reward_threshold=475, verbose=0)
    # evaluate every 10,000 env steps (1,250 calls of the 8-env vector), like rewardsmith's checkpoints
    callback = EvalCallback(eval_env, callback_on_new_best=stop, eval_freq=1250, n_eval_episodes=args.eval_episodes,
                            deterministic=True, verbose=0)
    model.learn(total_timesteps=100_000, callback=callback)
    print(json.dumps({"solved": bool(callback.best_mean_reward >= 475), "best_mean_reward": float(callback.best_mean_reward),
                      "env_steps": int(model.num_timesteps), "wall_s": time.perf_counter() - START}))


if __name__ == "__main__":
    main()
