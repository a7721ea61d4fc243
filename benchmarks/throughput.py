"""Env steps per second of the whole PPO training loop (rollout + update), side by side:
rewardsmith (torch envs), Stable-Baselines3 PPO (gymnasium envs in its DummyVecEnv) and a
CleanRL-style PPO (gymnasium SyncVectorEnv), at 1, 64, 1024 and 8192 envs, on CartPole and
Pendulum. All three use the same network (64x64 tanh), rollout length (32 steps per env),
4 epochs of 4 minibatches, one torch thread (so they compare implementations, not core counts).

Also measured: the rollout side alone (stepping the envs, the policy's forward pass, the reward:
rewardsmith's own timing of that phase; SB3's ``collect_rollouts``). At equal PPO settings the
update costs the same in every implementation, so the whole loop's ratio is bounded by it; the
rollout side is where the implementations differ. The second table prints that bound: SB3's loop
time over its update time.

    python benchmarks/throughput.py [--envs 1 64 1024 8192] [--tasks cartpole pendulum] [--skip-peers]
                                    [--device cpu|cuda|auto]
"""

from __future__ import annotations

import argparse
import time

import torch
from common import ROOT, console, save, table

TASKS = {
    "cartpole": ("torch:CartPole", "CartPole-v1", "cartpole_alive.py",
                 "sum(abs(pole_angle) < 0.2095 and abs(cart_pos) < 2.4) / max_episode_steps"),
    "pendulum": ("torch:Pendulum", "Pendulum-v1", "pendulum_classic.py", "mean(cos_theta > 0.95)"),
}
NUM_STEPS, EPOCHS, MINIBATCHES = 32, 4, 4


def budget(num_envs: int, seconds_per_step: float) -> int:
    """Timesteps for a run of a few seconds: at least 2 and at most 60 updates."""
    per_update = num_envs * NUM_STEPS
    updates = int(min(60, max(2, 4.0 / max(seconds_per_step * NUM_STEPS, 1e-6))))
    return per_update * updates


def rewardsmith_rate(task: str, num_envs: int, device: str = "cpu") -> tuple[float, float]:
    """Env steps per second of the whole loop, and of its rollout phase alone."""
    from rewardsmith import envs
    from rewardsmith.expressions import FitnessProgram
    from rewardsmith.reward import RewardFunction
    from rewardsmith.train.config import PPOConfig
    from rewardsmith.train.ppo import train

    env_name, _, reward_file, fitness = TASKS[task]
    env = envs.make(env_name, num_envs=num_envs, device=device, seed=0)
    desc = env.description
    reward = RewardFunction.from_file(ROOT / "benchmarks" / "rewards" / reward_file, desc.reward_arguments)
    program = FitnessProgram(fitness, set(desc.variable_names))
    steps = budget(num_envs, 3e-4 if num_envs <= 1024 else 5e-3)
    config = PPOConfig(total_timesteps=steps, num_steps=NUM_STEPS, update_epochs=EPOCHS,
                       num_minibatches=MINIBATCHES, early_stop=False, checkpoints=1)
    # warm-up (first calls allocate), then the measured run
    train(env, lambda v, a: reward(v, a), config.model_copy(update={"total_timesteps": num_envs * NUM_STEPS}), program)
    out = train(env, lambda v, a: reward(v, a), config, program)
    return out.log.steps_per_s, out.log.env_steps / out.log.rollout_s


def sb3_rate(task: str, num_envs: int, device: str = "cpu") -> tuple[float, float]:
    """Env steps per second of ``learn`` and of ``collect_rollouts`` alone."""
    from stable_baselines3 import PPO
    from stable_baselines3.common.env_util import make_vec_env

    gym_id = TASKS[task][1]
    env = make_vec_env(gym_id, n_envs=num_envs, seed=0)
    model = PPO("MlpPolicy", env, n_steps=NUM_STEPS, batch_size=max(1, num_envs * NUM_STEPS // MINIBATCHES),
                n_epochs=EPOCHS, learning_rate=1e-3, policy_kwargs={"net_arch": [64, 64]}, device=device, verbose=0)
    model.learn(num_envs * NUM_STEPS)  # warm-up
    steps = budget(num_envs, 2e-2 if num_envs > 1 else 2e-3)
    start = time.perf_counter()
    model.learn(steps, reset_num_timesteps=False)
    whole = steps / (time.perf_counter() - start)
    _, callback = model._setup_learn(steps, callback=None, reset_num_timesteps=False)
    callback.on_training_start(locals(), globals())
    rollouts = max(1, steps // (num_envs * NUM_STEPS) // 4)
    start = time.perf_counter()
    for _ in range(rollouts):
        model.collect_rollouts(model.env, callback, model.rollout_buffer, n_rollout_steps=NUM_STEPS)
    return whole, rollouts * num_envs * NUM_STEPS / (time.perf_counter() - start)


def cleanrl_rate(task: str, num_envs: int) -> float:
    from cleanrl_ppo import run

    gym_id = TASKS[task][1]
    run(gym_id, num_envs, num_envs * NUM_STEPS)  # warm-up
    return run(gym_id, num_envs, budget(num_envs, 1.5e-2 if num_envs > 1 else 1e-3))["steps_per_s"]


def update_bound(row: dict) -> dict:
    """How the update phase bounds the whole loop's ratio. Seconds per env step of each update
    (the loop minus its rollout); ``ceiling``: SB3's loop time over its update time, the ratio
    rewardsmith would reach with a rollout that took no time and an update as fast as SB3's."""
    def update_s(whole: float, rollout: float) -> float:
        return max(1.0 / whole - 1.0 / rollout, 1e-12)

    ours, theirs = update_s(row["rewardsmith"], row["rewardsmith_rollout"]), update_s(row["sb3"], row["sb3_rollout"])
    return {"update_vs_sb3": theirs / ours, "ceiling_at_sb3_update": (1.0 / row["sb3"]) / theirs}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--envs", type=int, nargs="+", default=[1, 64, 1024, 8192])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--skip-peers", action="store_true", help="measure rewardsmith only")
    parser.add_argument("--device", default="cpu",
                        help="cpu (default), cuda or auto: where rewardsmith's envs and policy and SB3's policy "
                             "run (the CleanRL-style PPO stays on the CPU)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    from rewardsmith.runners.guest import resolve_device

    device = resolve_device(args.device)

    results = []
    for task in args.tasks:
        for n in args.envs:
            row = {"task": task, "num_envs": n, "device": device}
            row["rewardsmith"], row["rewardsmith_rollout"] = rewardsmith_rate(task, n, device)
            if not args.skip_peers:
                row["sb3"], row["sb3_rollout"] = sb3_rate(task, n, device)
                row["cleanrl"] = cleanrl_rate(task, n)
                row["vs_sb3"] = row["rewardsmith"] / row["sb3"]
                row["vs_cleanrl"] = row["rewardsmith"] / row["cleanrl"]
                row["rollout_vs_sb3"] = row["rewardsmith_rollout"] / row["sb3_rollout"]
                row.update(update_bound(row))
            results.append(row)
            console.print(f"[dim]{row}[/]")
    columns = ["task", "envs", "rewardsmith steps/s"] + ([] if args.skip_peers else
                                                        ["SB3 steps/s", "CleanRL-style steps/s", "x SB3", "x CleanRL"])
    rows = [[r["task"], str(r["num_envs"]), r["rewardsmith"]] +
            ([] if args.skip_peers else [r["sb3"], r["cleanrl"], r["vs_sb3"], r["vs_cleanrl"]]) for r in results]
    table(f"Training throughput (env steps per second, whole PPO loop, 1 thread, {device})", columns, rows)
    if not args.skip_peers:
        table("Rollout side alone (env steps per second: envs, policy forward pass, reward), and the update",
              ["task", "envs", "rewardsmith", "SB3 collect_rollouts", "x SB3", "update x SB3",
               "loop ceiling at SB3's update"],
              [[r["task"], str(r["num_envs"]), r["rewardsmith_rollout"], r["sb3_rollout"], r["rollout_vs_sb3"],
                r["update_vs_sb3"], r["ceiling_at_sb3_update"]] for r in results])
        console.print("[dim]The ceiling: SB3's loop time over its update time, the whole-loop ratio with a rollout "
                      "that took no time and an update as fast as SB3's (same network, same epochs and minibatches, "
                      "so the same arithmetic).[/]")
    best = {}
    for task in args.tasks:
        mine = [r for r in results if r["task"] == task]
        top = max(mine, key=lambda r: r["rewardsmith"])
        best[task] = {"rewardsmith_best": top["rewardsmith"], "at_envs": top["num_envs"]}
        if not args.skip_peers:
            best[task]["sb3_best"] = max(r["sb3"] for r in mine)
            best[task]["ratio_best_vs_best"] = top["rewardsmith"] / best[task]["sb3_best"]
            console.print(f"{task}: best rewardsmith {top['rewardsmith']:,.0f} steps/s ({top['num_envs']} envs) vs best "
                          f"SB3 {best[task]['sb3_best']:,.0f} steps/s: {best[task]['ratio_best_vs_best']:.1f}x")
    save("throughput", {"settings": {"num_steps": NUM_STEPS, "epochs": EPOCHS, "minibatches": MINIBATCHES,
                                     "threads": 1, "device": device}, "results": results, "best": best})


if __name__ == "__main__":
    main()
