"""Check the builtin designer on conditions of the two kinds issue 16 found weak, on tasks of
our own (benchmarks/tasks/, not shipped): a distance under a small radius (reacher_tight) and a
speed to exceed in one direction (pendulum_spin, cheetah_sprint).

For each task this trains, with the task's settings and seed and through ``rewardsmith train``:
the builtin designer's first candidate (its reward from the fitness alone, before any
refinement), the same from the designer at ``--before REV`` (a git revision, to compare), and a
reference reward (the env's own or a hand-written one). ``--solve`` also runs the whole search.

    .venv/bin/python benchmarks/shaping_check.py --before layout
    .venv/bin/python benchmarks/shaping_check.py --tasks reacher_tight --solve
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
import types
from pathlib import Path

from common import PYTHON, ROOT, console, save, table

from rewardsmith.task import load_task

CLI = str(Path(PYTHON).parent / "rewardsmith")
TASKS = ROOT / "benchmarks" / "tasks"
REFERENCES = {"reacher_tight": "reacher_gym_own.py", "pendulum_spin": "pendulum_spin_reference.py",
              "cheetah_sprint": "halfcheetah_own.py"}
DEFAULT = ["reacher_tight", "pendulum_spin"]   # cheetah_sprint: 20+ minutes per training here


def designer_module(revision: str | None):
    """The builtin designer as it is now, or as it was at a git revision."""
    if revision is None:
        from rewardsmith.designer import builtin

        return builtin
    source = subprocess.run(["git", "show", f"{revision}:rewardsmith/designer/builtin.py"], cwd=ROOT,
                            capture_output=True, text=True, check=True).stdout
    module = types.ModuleType("rewardsmith.designer._builtin_before")
    module.__package__ = "rewardsmith.designer"
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"{revision}:builtin.py", "exec"), module.__dict__)  # our own code, from git
    return module


def first_candidate(module, task) -> str:
    plan = module.RewardPlan(task.fitness.expression, task.env.describe())
    return plan.render(plan.default_params())


def train(task_path: Path, reward: Path, out: Path, timeout: float) -> dict:
    start = time.perf_counter()
    proc = subprocess.run([CLI, "train", str(task_path), "--reward", str(reward), "--json", "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=timeout)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("{")]
    if not lines:
        return {"error": (proc.stderr.strip().splitlines() or ["no output"])[-1]}
    line = json.loads(lines[-1])
    return {"fitness": line["fitness"], "success": line["success"], "env_steps": line["env_steps"],
            "wall_s": time.perf_counter() - start}


def solve(task_path: Path, out: Path, timeout: float) -> dict:
    start = time.perf_counter()
    subprocess.run([CLI, "solve", str(task_path), "--model", "builtin", "--out", str(out)], capture_output=True,
                   text=True, cwd=ROOT, timeout=timeout)
    summary = json.loads((out / "summary.json").read_text()) if (out / "summary.json").is_file() else {}
    best = summary.get("best") or {}
    return {"fitness": best.get("fitness"), "success": bool(best.get("success")), "wall_s": time.perf_counter() - start}


def _cell(r: dict | None) -> str:
    if r is None:
        return "-"
    if "error" in r:
        return "error: " + r["error"][:30]
    steps = f" / {r['env_steps']:,}" if "env_steps" in r else ""
    return f"{r['fitness']:.3f} {'yes' if r['success'] else 'no'}{steps}" if r.get("fitness") is not None else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default=",".join(DEFAULT), help=f"comma-separated, from {', '.join(REFERENCES)}")
    parser.add_argument("--before", default=None, help="git revision of the designer to compare with")
    parser.add_argument("--solve", action="store_true", help="also run the whole builtin search")
    parser.add_argument("--timeout", type=float, default=7200)
    args = parser.parse_args()
    after = designer_module(None)
    before = designer_module(args.before) if args.before else None
    rows, results = [], []
    with tempfile.TemporaryDirectory(prefix="rs-shaping-") as tmp:
        for stem in [s.strip() for s in args.tasks.split(",")]:
            task_path = TASKS / f"{stem}.yaml"
            task = load_task(task_path)
            entry = {"task": stem, "fitness": task.fitness.expression}
            for label, module in (("after", after), ("before", before)):
                if module is None:
                    continue
                code = first_candidate(module, task)
                path = Path(tmp) / f"{stem}-{label}.py"
                path.write_text(code)
                console.print(f"[bold]{stem}[/]: training the designer's first candidate ({label}) ...")
                entry[label] = {**train(task_path, path, Path(tmp) / f"{stem}-{label}", args.timeout), "code": code}
            console.print(f"[bold]{stem}[/]: training the reference ...")
            entry["reference"] = train(task_path, ROOT / "benchmarks" / "rewards" / REFERENCES[stem],
                                       Path(tmp) / f"{stem}-reference", args.timeout)
            if args.solve:
                console.print(f"[bold]{stem}[/]: the whole builtin search ...")
                entry["solve"] = solve(task_path, Path(tmp) / f"{stem}-solve", args.timeout)
            results.append(entry)
            rows.append([stem, task.fitness.expression, _cell(entry.get("before")), _cell(entry.get("after")),
                         _cell(entry.get("solve")), _cell(entry["reference"])])
    table("Builtin designer on small-radius and one-way-speed conditions (fitness solved / env steps)",
          ["task", "fitness", "first candidate, before", "first candidate, now", "whole search, now", "reference"],
          rows)
    save("shaping_check", {"before": args.before, "tasks": results})


if __name__ == "__main__":
    main()
