"""A whole reward search against one Stable-Baselines3 training, in one go: the whole
``rewardsmith solve tasks/cartpole.yaml`` (the task's default search, every candidate with its
dry run, training, clean evaluation and videos; the builtin designer) and ``rewardsmith train``
with CartPole's own reward (``benchmarks/rewards/cartpole_alive.py``), each as a whole command,
side by side with SB3 PPO's time to solve CartPole once (``benchmarks/sb3_cartpole.py``, rl-zoo
settings, until mean evaluation return >= 475). Ratio = SB3's time / ours (above 1: we are faster).

    python benchmarks/solve_vs_sb3.py [--sandbox bwrap,docker] [--cold] [--no-resident]

Each command runs with its own warm workers (started by the command: what a first command pays)
and, unless ``--no-resident``, on resident warm workers (``rewardsmith workers start --task
cartpole``, started before and stopped after those rows: what each later command pays).
``--cold`` adds the same commands with ``--cold-workers`` (a fresh sandbox per job). The load
average is recorded: on a shared machine, compare ratios from one run.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import tempfile
from pathlib import Path

from common import PYTHON, ROOT, run_timed, save, table

RS = str(Path(PYTHON).parent / "rewardsmith")


def solve(sandbox: str, out: Path, workers: str) -> dict:
    cmd = [RS, "solve", str(ROOT / "tasks" / "cartpole.yaml"), "--sandbox", sandbox, "--json", "--out", str(out)]
    wall, stdout = run_timed(cmd + (["--cold-workers"] if workers == "cold" else []))
    line = json.loads(stdout.strip().splitlines()[-1])
    return {"wall_s": wall, "success": line["success"], "fitness": line["fitness"], "candidates": line["candidates"]}


def train(sandbox: str, out: Path, workers: str) -> dict:
    cmd = [RS, "train", str(ROOT / "tasks" / "cartpole.yaml"), "--reward",
           str(ROOT / "benchmarks" / "rewards" / "cartpole_alive.py"), "--sandbox", sandbox, "--json", "--out", str(out)]
    wall, stdout = run_timed(cmd + (["--cold-workers"] if workers == "cold" else []))
    line = json.loads(stdout.strip().splitlines()[-1])
    return {"wall_s": wall, "success": line["success"], "fitness": line["fitness"], "env_steps": line["env_steps"]}


def sb3() -> dict:
    wall, stdout = run_timed([PYTHON, str(ROOT / "benchmarks" / "sb3_cartpole.py"), "--seed", "0"])
    line = json.loads(stdout.strip().splitlines()[-1])
    return {"wall_s": wall, "success": line["solved"], "env_steps": line["env_steps"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sandbox", default="bwrap,docker", help="comma-separated sandboxes")
    parser.add_argument("--cold", action="store_true", help="also run with --cold-workers")
    parser.add_argument("--no-resident", action="store_true", help="skip the rows on resident warm workers")
    args = parser.parse_args()
    load_before = os.getloadavg()
    baseline = sb3()
    runs = []
    kinds = ["warm"] + ([] if args.no_resident else ["resident"]) + (["cold"] if args.cold else [])
    with tempfile.TemporaryDirectory(prefix="rs-bench-") as tmp:
        for sandbox in args.sandbox.split(","):
            for workers in kinds:
                if workers == "resident":  # started (and warmed for CartPole) before the timed commands
                    subprocess.run([RS, "workers", "start", "--sandbox", sandbox, "--task", "cartpole"], check=True,
                                   stdout=subprocess.DEVNULL)
                try:
                    for what, fn in (("solve", solve), ("train", train)):
                        out = Path(tmp) / f"{what}-{sandbox}-{workers}"
                        runs.append({"command": what, "sandbox": sandbox, "workers": workers, **fn(sandbox, out, workers)})
                finally:
                    if workers == "resident":
                        subprocess.run([RS, "workers", "stop", "--sandbox", sandbox], stdout=subprocess.DEVNULL)
    rows = [[f"rewardsmith {r['command']}", r["sandbox"], r["workers"], f"{r['wall_s']:.1f} s",
             "yes" if r["success"] else "NO", f"{baseline['wall_s'] / r['wall_s']:.2f}x"] for r in runs]
    rows.append(["SB3 PPO (rl-zoo), solve CartPole once", "-", "-", f"{baseline['wall_s']:.1f} s",
                 "yes" if baseline["success"] else "NO", "1.00x"])
    table(f"Whole commands against SB3 solving CartPole once (load average {load_before[0]:.1f} before)",
          ["command", "sandbox", "workers", "wall", "solved", "SB3 time / ours"], rows)
    for r in runs:
        r["ratio"] = baseline["wall_s"] / r["wall_s"]
    save("solve_vs_sb3", {"sb3": baseline, "runs": runs, "load_before": load_before, "load_after": os.getloadavg()})


if __name__ == "__main__":
    main()
