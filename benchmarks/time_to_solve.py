"""Time to solve CartPole with a fixed reward, whole command from start to finish:
``rewardsmith train tasks/cartpole.yaml --reward benchmarks/rewards/cartpole_alive.py --json``
(CartPole's own +1 reward, solved = evaluation fitness >= 0.95, i.e. mean return >= 475)
against Stable-Baselines3 PPO with rl-zoo's tuned CartPole settings until mean evaluation
return >= 475 (``benchmarks/sb3_cartpole.py``). Several seeds; medians compared.

    python benchmarks/time_to_solve.py [--seeds 3] [--sandbox auto]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from common import PYTHON, ROOT, console, run_timed, save, table


def rewardsmith_run(seed: int, sandbox: str, workdir: Path) -> dict:
    task = workdir / f"cartpole-seed{seed}.yaml"
    text = (ROOT / "tasks" / "cartpole.yaml").read_text().replace("seed: 0", f"seed: {seed}")
    task.write_text(text)
    cmd = [str(Path(PYTHON).parent / "rewardsmith"), "train", str(task), "--reward",
           str(ROOT / "benchmarks" / "rewards" / "cartpole_alive.py"), "--sandbox", sandbox, "--json",
           "--out", str(workdir / f"rs-{seed}")]
    wall, out = run_timed(cmd)
    line = json.loads(out.strip().splitlines()[-1])
    return {"seed": seed, "wall_s": wall, "solved": line["success"], "env_steps": line["env_steps"],
            "fitness": line["fitness"]}


def sb3_run(seed: int) -> dict:
    wall, out = run_timed([PYTHON, str(ROOT / "benchmarks" / "sb3_cartpole.py"), "--seed", str(seed)])
    line = json.loads(out.strip().splitlines()[-1])
    return {"seed": seed, "wall_s": wall, "solved": line["solved"], "env_steps": line["env_steps"],
            "best_mean_reward": line["best_mean_reward"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--sandbox", default="auto")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="rs-bench-") as tmp:
        ours = [rewardsmith_run(s, args.sandbox, Path(tmp)) for s in range(args.seeds)]
    sb3 = [sb3_run(s) for s in range(args.seeds)]
    rows = [["rewardsmith train", *[f"{r['wall_s']:.1f} s / {r['env_steps']:,} / {'yes' if r['solved'] else 'NO'}"
                                    for r in ours]],
            ["SB3 PPO (rl-zoo)", *[f"{r['wall_s']:.1f} s / {r['env_steps']:,} / {'yes' if r['solved'] else 'NO'}"
                                   for r in sb3]]]
    table("Time to solve CartPole, whole command (wall / env steps / solved)", ["", *[f"seed {s}" for s in range(args.seeds)]],
          rows)
    ours_med = statistics.median(r["wall_s"] for r in ours)
    sb3_med = statistics.median(r["wall_s"] for r in sb3)
    console.print(f"median: rewardsmith {ours_med:.1f} s, SB3 {sb3_med:.1f} s -> [bold]{sb3_med / ours_med:.1f}x faster[/]")
    save("time_to_solve", {"sandbox": args.sandbox, "rewardsmith": ours, "sb3": sb3, "median_rewardsmith_s": ours_med,
                           "median_sb3_s": sb3_med, "speedup": sb3_med / ours_med})


if __name__ == "__main__":
    main()
