"""Experience reuse in a solve: the same builtin-designer solve of a SAC task with reuse on (the
default) and off (``--set train.reuse_experience=false``), through the CLI. Measured: env steps
summed over the candidates, in order (iteration, then index), up to and including the first
that succeeds; and the median env steps a candidate of a later iteration trained (early stop at
success, so fewer steps mean it got there sooner).

The budget per candidate is set below what SAC needs from scratch on these tasks, so the first
iteration does not succeed and the later ones show what starting from it is worth.

    python benchmarks/reuse_solve.py [--sandbox process] [--tasks pendulum_sac inverted_pendulum_sac]

Measured here (2 shared cores, process sandbox, pendulum_sac, 3 iterations x 2 candidates, 4000
steps each): the first success came in iteration 1 both ways (4000 steps: the budget was not
below what SAC needs, so "to the first success" is 1.0x); the later iterations' candidates
trained a median 1000 env steps with reuse against 4000 without (4x), the whole solve 12,000 env
steps against 24,000 (2x), 5 of 6 candidates successful against 4 of 6; wall time 167 s against
92 s (the gradient steps on the reused transitions cost more than the env steps they save on a
CPU torch Pendulum).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from common import PYTHON, ROOT, console, run_timed, save, table

# task: (iterations, samples, env steps per candidate)
SETTINGS = {"pendulum_sac": (3, 2, 4000), "inverted_pendulum_sac": (3, 2, 8000)}


def solve(task: str, reuse: bool, sandbox: str, workdir: Path) -> dict:
    iterations, samples, steps = SETTINGS[task]
    out = workdir / f"{task}-{'reuse' if reuse else 'scratch'}"
    cmd = [str(Path(PYTHON).parent / "rewardsmith"), "solve", str(ROOT / "tasks" / f"{task}.yaml"),
           "--model", "builtin", "--sandbox", sandbox, "--iterations", str(iterations), "--samples", str(samples),
           "--total-timesteps", str(steps), "--set", f"train.reuse_experience={'true' if reuse else 'false'}",
           "--out", str(out), "--json"]
    wall, _ = run_timed(cmd)
    results = sorted((json.loads(p.read_text()) for p in out.glob("iter_*/cand_*/result.json")),
                     key=lambda r: (r["iteration"], r["index"]))
    to_first, first = 0, None
    for r in results:
        to_first += r["train"]["env_steps"] if r.get("train") else 0
        if r.get("success"):
            first = (r["iteration"] + 1, r["index"])
            break
    later = [r["train"]["env_steps"] for r in results if r["iteration"] > 0 and r.get("train")]
    return {"task": task, "reuse": reuse, "wall_s": wall, "first_success": first,
            "env_steps_to_first_success": to_first if first else None,
            "env_steps_all": sum(r["train"]["env_steps"] for r in results if r.get("train")),
            "later_median_env_steps": statistics.median(later) if later else None,
            "successes": sum(bool(r.get("success")) for r in results), "candidates": len(results),
            "reused": [r["train"]["reused_transitions"] for r in results if r.get("train")]}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sandbox", default="process")
    parser.add_argument("--tasks", nargs="*", default=list(SETTINGS))
    args = parser.parse_args()
    rows, runs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks:
            on, off = (solve(task, reuse, args.sandbox, Path(tmp)) for reuse in (True, False))
            runs += [on, off]
            ratio = (off["env_steps_to_first_success"] / on["env_steps_to_first_success"]
                     if on["env_steps_to_first_success"] and off["env_steps_to_first_success"] else None)
            rows.append([task, f"{on['env_steps_to_first_success'] or 'never'}",
                         f"{off['env_steps_to_first_success'] or 'never'}",
                         f"{ratio:.1f}x" if ratio else "-",
                         f"{on['later_median_env_steps']} / {off['later_median_env_steps']}",
                         f"{on['successes']}/{on['candidates']} vs {off['successes']}/{off['candidates']}",
                         f"{on['wall_s']:.0f} / {off['wall_s']:.0f}"])
            console.print(json.dumps([on, off]))
    table("Solve with experience reuse (on) vs from scratch (off), builtin designer",
          ["task", "env steps to 1st success (on)", "(off)", "off/on", "later candidates' median steps on/off",
           "successes on vs off", "wall s on/off"], rows)
    save("reuse_solve", {"settings": SETTINGS, "sandbox": args.sandbox, "runs": runs})


if __name__ == "__main__":
    main()
