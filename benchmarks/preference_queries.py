"""How many preference queries does the loop need? (ICPL's measure, with a scripted person.)

For each shipped task, run the solve loop one iteration at a time until the candidate the
feedback picked as best reaches the task's success threshold (or ``--max-iterations`` pass):
- ``metric``: the loop ranks by the ground-truth fitness (no person involved);
- ``synthetic``: a stand-in person ranks by fitness plus noise (``--noise``, std as a fraction
  of the success threshold); each iteration it ranks is one query.

Prints a table and writes ``benchmarks/results/preference_queries-<time>.json``.

    .venv/bin/python benchmarks/preference_queries.py                  # shipped tasks, their budgets
    .venv/bin/python benchmarks/preference_queries.py --tasks tasks/cartpole.yaml \
        --total-timesteps 12000 --seeds 0 1 --noise 0.1 0.5            # a budget where the reward matters
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import save, table  # noqa: E402
from rich.console import Console  # noqa: E402

import rewardsmith.api as rs  # noqa: E402
from rewardsmith.errors import RewardsmithError  # noqa: E402
from rewardsmith.runs import RunDir  # noqa: E402
from rewardsmith.task import load_task  # noqa: E402

console = Console(stderr=True)


def picked_fitness(run_path: Path, iteration: int) -> tuple[float | None, float | None]:
    """Ground-truth fitness of the candidate the feedback picked, and the best fitness, in ``iteration``."""
    record = RunDir(run_path).history()[iteration]
    scores = {c.index: c.fitness for c in record.candidates if c.fitness is not None}
    best = record.feedback.best if record.feedback else None
    return scores.get(best), max(scores.values(), default=None)


def run_one(task, feedback: str, noise: float | None, seed: int, args, workdir: Path) -> dict:
    task = task.with_overrides(train={"seed": seed, "total_timesteps": args.total_timesteps},
                               search={"samples": args.samples})
    run_path = workdir / f"{task.name}-{feedback}-{noise}-{seed}"
    threshold = task.fitness.success_threshold
    start = time.perf_counter()
    picked, best, reached = [], [], None
    env_steps = 0
    for iteration in range(args.max_iterations):
        common = dict(iterations=iteration + 1, sandbox=args.sandbox, parallel=args.parallel)
        if iteration == 0:
            result = rs.solve(task, feedback=feedback, feedback_noise=noise, out=run_path, **common)
        else:
            result = rs.solve(resume=run_path, **common)
        chosen, top = picked_fitness(run_path, iteration)
        picked.append(chosen)
        best.append(top)
        if chosen is not None and chosen >= threshold:
            reached = iteration + 1
            break
    for record in RunDir(run_path).history():
        env_steps += sum(c.train.env_steps for c in record.candidates if c.train)
    if not args.keep:
        shutil.rmtree(run_path, ignore_errors=True)
    return {"task": task.name, "feedback": feedback, "noise": noise, "seed": seed,
            "reached_at": reached, "queries": reached if feedback != "metric" else 0,
            "iterations_run": len(picked), "picked_fitness": picked, "best_fitness": best,
            "threshold": threshold, "env_steps": env_steps,
            "wall_s": round(time.perf_counter() - start, 1), "status": result.summary.status}


def summarise(rows: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["task"], r["feedback"], r["noise"]), []).append(r)
    out = []
    for (task, feedback, noise), runs in groups.items():
        reached = [r["reached_at"] for r in runs if r["reached_at"] is not None]
        out.append({"task": task, "feedback": feedback, "noise": noise, "runs": len(runs),
                    "reached": len(reached),
                    "mean_iterations_to_threshold": round(statistics.mean(reached), 2) if reached else None,
                    "iterations_per_seed": [r["reached_at"] for r in runs],
                    "human_queries_total": sum(r["queries"] or r["iterations_run"] for r in runs)
                    if feedback != "metric" else 0,
                    "wall_s": round(sum(r["wall_s"] for r in runs), 1)})
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="*", type=Path, default=sorted((ROOT / "tasks").glob("*.yaml")))
    parser.add_argument("--max-iterations", type=int, default=3)
    parser.add_argument("--samples", type=int, default=None, help="candidates per iteration (default: the task's)")
    parser.add_argument("--total-timesteps", type=int, default=None, help="training budget (default: the task's)")
    parser.add_argument("--noise", type=float, nargs="*", default=[0.3],
                        help="noise levels of the synthetic person")
    parser.add_argument("--seeds", type=int, nargs="*", default=[0])
    parser.add_argument("--sandbox", default="process")
    parser.add_argument("--parallel", type=int, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the run directories")
    args = parser.parse_args(argv)

    modes = [("metric", None)] + [("synthetic", n) for n in args.noise]
    rows, skipped = [], []
    workdir = Path(tempfile.mkdtemp(prefix="rs-prefq-"))
    try:
        for path in args.tasks:
            try:
                task = load_task(path)
            except RewardsmithError as exc:
                skipped.append({"task": str(path), "reason": str(exc)})
                continue
            for feedback, noise in modes:
                for seed in args.seeds:
                    console.print(f"{task.name}: {feedback}" + (f" (noise {noise})" if noise is not None else "")
                                  + f", seed {seed} ...")
                    try:
                        row = run_one(task, feedback, noise, seed, args, workdir)
                    except RewardsmithError as exc:
                        skipped.append({"task": task.name, "feedback": feedback, "seed": seed, "reason": str(exc)})
                        continue
                    console.print(f"  reached the threshold at iteration {row['reached_at']} · picked fitness "
                                  f"{row['picked_fitness']} · {row['wall_s']} s")
                    rows.append(row)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    summary = summarise(rows)
    table("Iterations (= preference queries for a person) to reach the success threshold",
          ["task", "feedback", "noise", "reached", "iterations per seed", "mean", "queries", "wall s"],
          [[x["task"], x["feedback"], "-" if x["noise"] is None else f"{x['noise']:g}", f"{x['reached']}/{x['runs']}",
            " ".join("-" if i is None else str(i) for i in x["iterations_per_seed"]),
            "-" if x["mean_iterations_to_threshold"] is None else f"{x['mean_iterations_to_threshold']:g}",
            str(x["human_queries_total"]), x["wall_s"]] for x in summary])
    save("preference_queries", {
        "settings": {"max_iterations": args.max_iterations, "samples": args.samples,
                     "total_timesteps": args.total_timesteps, "noise": args.noise, "seeds": args.seeds,
                     "sandbox": args.sandbox, "designer": "builtin"},
        "summary": summary, "runs": rows, "skipped": skipped})
    return 0


if __name__ == "__main__":
    sys.exit(main())
