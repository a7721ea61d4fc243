"""What share of a training step the reward function costs, inside real PPO runs.

The reward call, the env step and the whole loop are timed in a rewardsmith training run (on a
CPU, torch runs synchronously, so wall-clock timers around a call measure that call). Rewards:
the builtin designer's first candidate for each shipped task (a typical dense reward).

    python benchmarks/reward_cost.py [--envs 64 1024 8192]
"""

from __future__ import annotations

import argparse
import time

import torch
from common import ROOT, save, table


def measure(task_file: str, num_envs: int) -> dict:
    from rewardsmith.designer import DesignRequest
    from rewardsmith.designer.builtin import BuiltinDesigner
    from rewardsmith.expressions import FitnessProgram
    from rewardsmith.reward import RewardFunction
    from rewardsmith.task import load_task
    from rewardsmith.train.ppo import train

    task = load_task(ROOT / "tasks" / task_file)
    desc = task.env.describe()
    code = BuiltinDesigner().propose(DesignRequest(task, desc, [], 0, 1))[0].code
    reward = RewardFunction(code, desc.reward_arguments)
    env = task.env.make(num_envs)
    timers = {"reward": 0.0, "env": 0.0}
    env_step = env.step

    def timed_step(action):
        t = time.perf_counter()
        out = env_step(action)
        timers["env"] += time.perf_counter() - t
        return out

    def timed_reward(variables, action):
        t = time.perf_counter()
        out = reward.checked_call(variables, action, num_envs)
        timers["reward"] += time.perf_counter() - t
        return out

    env.step = timed_step
    config = task.train.model_copy(update={"total_timesteps": num_envs * task.train.num_steps * 20, "early_stop": False})
    out = train(env, timed_reward, config, FitnessProgram(task.fitness.expression, set(desc.variable_names)))
    total = out.log.wall_s
    return {"task": task.name, "num_envs": num_envs, "reward_share": timers["reward"] / total,
            "reward_vs_env_step": timers["reward"] / timers["env"], "steps_per_s": out.log.steps_per_s}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", type=int, nargs="+", default=[64, 1024, 8192])
    parser.add_argument("--tasks", nargs="+", default=["cartpole.yaml", "pendulum.yaml"])
    args = parser.parse_args()
    torch.set_num_threads(1)
    results = [measure(t, n) for t in args.tasks for n in args.envs]
    table("Cost of the reward function inside training", ["task", "envs", "share of loop time", "reward / env step",
                                                          "steps/s"],
          [[r["task"], str(r["num_envs"]), f"{100 * r['reward_share']:.1f}%", f"{r['reward_vs_env_step']:.2f}",
            r["steps_per_s"]] for r in results])
    save("reward_cost", {"results": results})


if __name__ == "__main__":
    main()
