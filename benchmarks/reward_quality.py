"""Reward quality: the builtin designer's best reward next to the env's own (or the shipped
reference) reward, trained with the same settings and seeds, for every shipped task.

Both sides run as a user would, through the CLI: ``rewardsmith solve TASK --model builtin`` and
``rewardsmith train TASK --reward REFERENCE --json``. The reference of ``tasks/NAME.yaml`` is
``tasks/rewards/NAME_reference.py`` (for CartPole and Pendulum, the benchmarks' own copies of
gymnasium's rewards). Reported per task: the builtin's best fitness, whether it passed the task's
success threshold, and the env steps of the whole search (all candidates) and of its best
candidate; the reference's fitness, success and env steps; and the wall time of each side.

Budgets (the same for both sides):
- ``quick`` (the default): one iteration of the search with the task's samples, and at most
  ``--max-steps`` (200k) env steps per training; about 30-40 minutes for every shipped task on a
  2-core machine (one solve and one reference training run side by side);
- ``full``: the task files' own search and training budgets (an hour or more: Hopper trains 1M
  steps per candidate).

Training stops at the first periodic evaluation past the task's threshold, as in a solve, so two
solved sides both end near the threshold and their fitness differs by evaluation noise.
``--no-early-stop`` trains both for the whole budget and compares where they end.

    .venv/bin/python benchmarks/reward_quality.py                          # every shipped task, quick
    .venv/bin/python benchmarks/reward_quality.py --tasks cartpole,metaworld_reach --budget full

Prints a table and writes ``benchmarks/results/reward_quality-<time>.json``.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from common import PYTHON, ROOT, console, save, table

from rewardsmith.task import load_task

CLI = str(Path(PYTHON).parent / "rewardsmith")   # the rewardsmith command of this Python
# shipped tasks whose reference lives with the other benchmarks
REFERENCES = {"cartpole": ROOT / "benchmarks" / "rewards" / "cartpole_alive.py",
              "pendulum": ROOT / "benchmarks" / "rewards" / "pendulum_classic.py",
              "pendulum_sac": ROOT / "benchmarks" / "rewards" / "pendulum_classic.py"}  # the same env


def reference_for(stem: str) -> Path | None:
    path = REFERENCES.get(stem, ROOT / "tasks" / "rewards" / f"{stem}_reference.py")
    return path if path.is_file() else None


def shipped_tasks() -> list[str]:
    return [p.stem for p in sorted((ROOT / "tasks").glob("*.yaml"))]


def _budget_flags(task, args) -> list[str]:
    flags = ["--set", "train.early_stop=false"] if args.no_early_stop else []
    if args.budget == "full":
        return flags
    steps = min(task.train.total_timesteps, args.max_steps)
    return [*flags, "--total-timesteps", str(steps)]


def run_builtin(stem: str, args, workdir: Path) -> dict:
    task = load_task(ROOT / "tasks" / f"{stem}.yaml")
    out = workdir / f"{stem}-builtin"
    cmd = [CLI, "solve", str(ROOT / "tasks" / f"{stem}.yaml"), "--model", "builtin", "--out", str(out),
           "--sandbox", args.sandbox, *_budget_flags(task, args)]
    if args.budget == "quick":
        cmd += ["--iterations", "1"]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=args.timeout)
    wall = time.perf_counter() - start
    summary_path = out / "summary.json"
    if not summary_path.is_file():
        return {"error": (proc.stderr.strip().splitlines() or ["no summary"])[-1], "wall_s": wall}
    summary = json.loads(summary_path.read_text())
    steps, best_steps = 0, None
    best = summary.get("best") or {}
    for cand in summary.get("candidates", []):
        result = out / f"iter_{cand['iteration']:02d}" / f"cand_{cand['index']:02d}" / "result.json"
        if result.is_file():
            data = json.loads(result.read_text())
            n = (data.get("train") or {}).get("env_steps", 0)
            steps += n
            if best.get("reward_file", "").startswith(f"iter_{cand['iteration']:02d}/cand_{cand['index']:02d}/"):
                best_steps = n
    return {"fitness": best.get("fitness"), "success": bool(best.get("success")), "env_steps": steps,
            "best_env_steps": best_steps, "candidates": len(summary.get("candidates", [])), "wall_s": wall,
            "status": summary.get("status"), "reward_file": best.get("reward_file")}


def run_reference(stem: str, args, workdir: Path) -> dict:
    task = load_task(ROOT / "tasks" / f"{stem}.yaml")
    reward = reference_for(stem)
    if reward is None:
        return {"error": "no reference reward"}
    out = workdir / f"{stem}-reference"
    cmd = [CLI, "train", str(ROOT / "tasks" / f"{stem}.yaml"), "--reward", str(reward), "--json",
           "--out", str(out), "--sandbox", args.sandbox, *_budget_flags(task, args)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=args.timeout)
    wall = time.perf_counter() - start
    lines = [ln for ln in proc.stdout.strip().splitlines() if ln.startswith("{")]
    if not lines:
        return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1], "wall_s": wall}
    line = json.loads(lines[-1])
    return {"fitness": line.get("fitness"), "success": bool(line.get("success")), "env_steps": line.get("env_steps"),
            "status": line.get("status"), "wall_s": wall, "reward": str(reward.relative_to(ROOT))}


def available(stem: str) -> str | None:
    """Why a task cannot run here (its env's package is missing), or None."""
    text = (ROOT / "tasks" / f"{stem}.yaml").read_text()
    if "Meta-World/" in text and importlib.util.find_spec("metaworld") is None:
        return "needs the metaworld extra"
    if "backend: gymnasium" in text and "-v5" in text and importlib.util.find_spec("mujoco") is None:
        return "needs the mujoco extra"
    return None


def _fmt(side: dict) -> tuple[str, str, str]:
    if "error" in side:
        return "error", "-", side["error"][:40]
    fit = "-" if side.get("fitness") is None else f"{side['fitness']:.3g}"
    steps = f"{side.get('env_steps') or 0:,}"
    if side.get("best_env_steps") is not None:  # the builtin's search: its best candidate / all candidates
        steps = f"{side['best_env_steps']:,} / {steps}"
    return fit, "yes" if side.get("success") else "no", steps


def _row(entry: dict) -> list:
    b, r = entry["builtin"], entry["reference"]
    bf, bs, bn = _fmt(b)
    rf, rs_, rn = _fmt(r)
    return [entry["task"], f"{entry['threshold']:g}", bf, bs, bn, rf, rs_, rn,
            f"{b.get('wall_s', 0):.0f} / {r.get('wall_s', 0):.0f}"]


COLUMNS = ["task", "threshold", "builtin fitness", "solved", "env steps (best / search)", "reference fitness",
           "solved", "env steps", "wall s (builtin / ref)"]


def show(path: Path) -> None:
    """Print the table of a results file again."""
    data = json.loads(path.read_text())
    rows = [_row(e) for e in data["tasks"] if "builtin" in e]
    table(f"Reward quality ({data['budget']} budget, {data['wall_s'] / 60:.0f} min, load average "
          f"{data['machine'].get('load_average') or 0:.0f} on {data['machine']['cpus']} cores)", COLUMNS, rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="all", help="comma-separated task names (tasks/NAME.yaml), or all")
    parser.add_argument("--budget", choices=("quick", "full"), default="quick")
    parser.add_argument("--max-steps", type=int, default=200_000, help="quick budget: env steps per training at most")
    parser.add_argument("--sandbox", default="auto")
    parser.add_argument("--timeout", type=float, default=7200, help="seconds per solve or training command")
    parser.add_argument("--no-early-stop", action="store_true",
                        help="train every candidate and the reference for the whole budget, so both sides' fitness "
                             "is where training ends, not the first evaluation past the threshold")
    parser.add_argument("--serial", action="store_true", help="run the two sides one after the other")
    parser.add_argument("--show", type=Path, help="print the table of a results file and stop")
    args = parser.parse_args()
    if args.show:
        show(args.show)
        return
    stems = shipped_tasks() if args.tasks == "all" else [s.strip().removesuffix(".yaml") for s in args.tasks.split(",")]
    unknown = [s for s in stems if not (ROOT / "tasks" / f"{s}.yaml").is_file()]
    if unknown:
        parser.error(f"no such task: {', '.join(unknown)} (known: {', '.join(shipped_tasks())})")
    rows, results = [], []
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="rs-quality-") as tmp, ThreadPoolExecutor(1 if args.serial else 2) as pool:
        for stem in stems:
            why = available(stem)
            if why:
                console.print(f"[yellow]{stem}: skipped ({why})[/]")
                results.append({"task": stem, "skipped": why})
                continue
            console.print(f"[bold]{stem}[/]: builtin solve and reference training ({args.budget} budget) ...")
            builtin = pool.submit(run_builtin, stem, args, Path(tmp))
            reference = pool.submit(run_reference, stem, args, Path(tmp))
            b, r = builtin.result(), reference.result()
            task = load_task(ROOT / "tasks" / f"{stem}.yaml")
            entry = {"task": stem, "threshold": task.fitness.success_threshold, "builtin": b, "reference": r}
            results.append(entry)
            rows.append(_row(entry))
            console.print(f"  builtin {rows[-1][2]} ({rows[-1][3]}, {rows[-1][4]} steps) · reference {rows[-1][5]} "
                          f"({rows[-1][6]}, {rows[-1][7]} steps)")
    mode = f"{args.budget} budget{', no early stop' if args.no_early_stop else ''}"
    table(f"Reward quality ({mode}): builtin designer vs the env's own / reference reward", COLUMNS, rows)
    wall = time.perf_counter() - started
    console.print(f"total wall time {wall / 60:.1f} min")
    save("reward_quality", {"budget": args.budget, "early_stop": not args.no_early_stop,
                            "max_steps": args.max_steps if args.budget == "quick" else None,
                            "sandbox": args.sandbox, "wall_s": wall, "tasks": results})


if __name__ == "__main__":
    main()
