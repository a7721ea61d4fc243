"""SAC against Stable-Baselines3's SAC at equal settings: env steps and wall time to a fitness.

Both learn on the same gymnasium env (rewardsmith through its gymnasium backend, SB3 through its
DummyVecEnv), with the env's own reward (as a rewardsmith reward file), the same network
(SB3's default, 256x256 ReLU, for actor and each critic) and SB3's SAC defaults (buffer 1e6,
batch 256, tau 0.005, gamma 0.99, one gradient step per env step, automatic entropy tuning),
with rl-zoo's learning rate for Pendulum. One env, one torch thread each.

Every ``eval_every`` env steps each policy is scored by the same code (rewardsmith's
``evaluate_policy``, deterministic actions, the same evaluation episodes, the task's fitness);
a run stops at the first score at or above the threshold. Its times leave the evaluations out
(they are the same code for both): they are the time of training alone, as wall time and as the
process's CPU time (which other jobs on a shared machine disturb less). Medians over seeds.

    python benchmarks/sac_vs_sb3.py [--tasks pendulum inverted_pendulum] [--seeds 3] [--hidden 256]
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import dataclass

import torch
from common import ROOT, console, save, table


@dataclass(frozen=True)
class Task:
    gym_id: str
    reward_file: str
    fitness: str
    threshold: float
    max_steps: int
    eval_every: int
    learning_rate: float
    learning_starts: int


TASKS = {
    # fraction of the episode within ~18 degrees of upright (tasks/pendulum*.yaml)
    "pendulum": Task("Pendulum-v1", "pendulum_v1.py", "mean(cos_theta > 0.95)", 0.6, 20_000, 250, 1e-3, 100),
    # the pole stays up for the whole 1000-step episode (MuJoCo)
    "inverted_pendulum": Task("InvertedPendulum-v5", "inverted_pendulum_alive.py",
                              "episode_length / max_episode_steps", 0.95, 30_000, 1000, 3e-4, 1000),
}
EVAL_EPISODES = 16
EVAL_SEED = 10_000


class Evaluator:
    """The same fitness evaluation for both libraries, timed so that it can be left out."""

    def __init__(self, task: Task):
        from rewardsmith import envs
        from rewardsmith.expressions import FitnessProgram

        self.task = task
        self.program = FitnessProgram(task.fitness, set(envs.describe(f"gymnasium:{task.gym_id}").variable_names))
        self.seconds = self.cpu_seconds = 0.0
        self.scores: list[tuple[int, float]] = []

    def __call__(self, policy, step: int) -> float:
        from rewardsmith import envs
        from rewardsmith.train.evaluate import evaluate_policy

        start, cpu_start = time.perf_counter(), time.process_time()
        # a new env each time: every evaluation of either library plays the same episodes
        env = envs.make(f"gymnasium:{self.task.gym_id}", num_envs=EVAL_EPISODES, seed=EVAL_SEED)
        fitness = evaluate_policy(policy, env, self.program, self.task.threshold, variables=False).fitness
        env.close()
        self.seconds += time.perf_counter() - start
        self.cpu_seconds += time.process_time() - cpu_start
        self.scores.append((step, round(fitness, 3)))
        return fitness


def rewardsmith_run(task: Task, seed: int, hidden: int) -> dict:
    from rewardsmith import envs
    from rewardsmith.reward import RewardFunction
    from rewardsmith.train import train
    from rewardsmith.train.config import SACConfig

    env = envs.make(f"gymnasium:{task.gym_id}", num_envs=1, seed=seed)
    reward = RewardFunction.from_file(ROOT / "benchmarks" / "rewards" / task.reward_file,
                                      env.description.reward_arguments)
    evaluator = Evaluator(task)
    cpu_start = time.process_time()
    config = SACConfig(algorithm="sac", total_timesteps=task.max_steps, seed=seed, hidden_sizes=(hidden, hidden),
                       learning_rate=task.learning_rate, learning_starts=task.learning_starts,
                       eval_every=task.eval_every, checkpoints=max(1, task.max_steps // task.eval_every))
    out = train(env, lambda v, a: reward(v, a), config, evaluator.program,
                # with one env, the k-th evaluation comes after k * eval_every steps
                evaluate=lambda policy: evaluator(policy, (len(evaluator.scores) + 1) * task.eval_every),
                success_threshold=task.threshold)
    cpu = time.process_time() - cpu_start
    env.close()
    return _result(evaluator, out.log.env_steps, out.log.wall_s - evaluator.seconds, cpu - evaluator.cpu_seconds)


class SB3Policy:
    """An SB3 SAC policy behind rewardsmith's ``act(obs, deterministic)``."""

    def __init__(self, model):
        self.model = model

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = True) -> torch.Tensor:
        unit = self.model.policy.actor(obs, deterministic=deterministic)
        return torch.as_tensor(self.model.policy.unscale_action(unit.numpy()))


def sb3_run(task: Task, seed: int, hidden: int) -> dict:
    from stable_baselines3 import SAC
    from stable_baselines3.common.callbacks import BaseCallback
    from stable_baselines3.common.env_util import make_vec_env

    evaluator = Evaluator(task)

    class EvalAndStop(BaseCallback):
        def _on_step(self) -> bool:
            if self.num_timesteps % task.eval_every:
                return True
            return evaluator(SB3Policy(self.model), self.num_timesteps) < task.threshold

    env = make_vec_env(task.gym_id, n_envs=1, seed=seed)
    start, cpu_start = time.perf_counter(), time.process_time()
    model = SAC("MlpPolicy", env, learning_rate=task.learning_rate, learning_starts=task.learning_starts,
                policy_kwargs={"net_arch": [hidden, hidden]}, seed=seed, device="cpu", verbose=0)
    model.learn(task.max_steps, callback=EvalAndStop())
    wall, cpu = time.perf_counter() - start, time.process_time() - cpu_start
    env.close()
    return _result(evaluator, int(model.num_timesteps), wall - evaluator.seconds, cpu - evaluator.cpu_seconds)


def _result(evaluator: Evaluator, env_steps: int, train_s: float, train_cpu_s: float) -> dict:
    """A run stops at its first success, so ``env_steps`` is also the steps to it."""
    solved = [step for step, fitness in evaluator.scores if fitness >= evaluator.task.threshold]
    return {"solved": bool(solved), "env_steps": solved[0] if solved else env_steps, "train_s": round(train_s, 2),
            "train_cpu_s": round(train_cpu_s, 2), "ms_per_step": round(1000 * train_s / env_steps, 3),
            "cpu_ms_per_step": round(1000 * train_cpu_s / env_steps, 3),
            "final_fitness": evaluator.scores[-1][1] if evaluator.scores else None, "evaluations": evaluator.scores}


def _pair(medians: dict, key: str, fmt: str) -> str:
    return f"{medians['rewardsmith'][key]:{fmt}} / {medians['sb3'][key]:{fmt}}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--hidden", type=int, default=256, help="units in each of the two hidden layers")
    args = parser.parse_args()
    torch.set_num_threads(1)
    results, rows, path = {}, [], None
    settings = {"seeds": args.seeds, "hidden": args.hidden, "num_envs": 1, "threads": 1, "eval_episodes": EVAL_EPISODES}
    for name in args.tasks:
        task = TASKS[name]
        runs = {"rewardsmith": [], "sb3": []}
        for seed in range(args.seeds):
            for who, run in (("rewardsmith", rewardsmith_run), ("sb3", sb3_run)):
                r = run(task, seed, args.hidden)
                runs[who].append({"seed": seed, **r})
                console.print(f"[dim]{name} seed {seed} {who}: {r['env_steps']:,} steps, {r['train_s']:.1f} s, "
                              f"{r['train_cpu_s']:.1f} CPU s, {'solved' if r['solved'] else 'NOT solved'}[/]")
        med = {who: {key: statistics.median(r[key] for r in rs) for key in ("env_steps", "train_s", "train_cpu_s", "ms_per_step",
                                                                       "cpu_ms_per_step")}
               | {"solved": sum(r["solved"] for r in rs)} for who, rs in runs.items()}
        ours, theirs = med["rewardsmith"], med["sb3"]
        results[name] = {"task": task.__dict__, "runs": runs, "median": med,
                         "steps_ratio": theirs["env_steps"] / ours["env_steps"],
                         "time_ratio": theirs["train_s"] / ours["train_s"],
                         "cpu_time_ratio": theirs["train_cpu_s"] / ours["train_cpu_s"],
                         "step_time_ratio": theirs["ms_per_step"] / ours["ms_per_step"],
                         "cpu_step_time_ratio": theirs["cpu_ms_per_step"] / ours["cpu_ms_per_step"]}
        r = results[name]
        rows.append([task.gym_id, _pair(med, "env_steps", ",.0f"), r["steps_ratio"], _pair(med, "train_s", ".1f"),
                     r["time_ratio"], _pair(med, "train_cpu_s", ".1f"), r["cpu_time_ratio"],
                     _pair(med, "cpu_ms_per_step", ".1f"), r["cpu_step_time_ratio"], _pair(med, "solved", "d")])
        # saved after each task, so that a long run stopped part way keeps the tasks it finished
        path = save("sac_vs_sb3", {"settings": settings, "results": results}, path)
    table(f"SAC to a fitness, rewardsmith / SB3: medians of {args.seeds} seeds, {args.hidden}x{args.hidden} networks, "
          "1 env, 1 thread; env steps, wall and CPU seconds of training to the first evaluation at the threshold, "
          "CPU ms per env step; x = SB3 / rewardsmith (above 1: rewardsmith ahead)",
          ["env", "steps", "x", "wall s", "x", "CPU s", "x", "ms/step", "x", "solved"], rows)


if __name__ == "__main__":
    main()
