"""What a solve spends to find a reward that works: env steps and wall time to the first
candidate that succeeds, and the best fitness within a fixed budget of env steps, for

- ``eureka``: Eureka's search: K samples an iteration, each trained from scratch to its full
  budget; no screening, no duplicate skip, no early stop;
- ``no_screen``: rewardsmith with trajectory screening and warm start off (early stop and
  duplicate skip on, as by default): the baseline issue 22's target is measured against;
- ``defaults``: rewardsmith as shipped (screening on);
- ``warm``: the defaults plus ``train.init: best``.

with the builtin designer and with the LLM designer against the scripted test server
(tests/fake_llm_server.py over real HTTP), whose CartPole answers include a reward that pays for
the pole falling, a constant one and one that ignores the pole. Each mode runs the whole
``rewardsmith solve`` command; its env steps are the training steps of every candidate of the
iterations up to the one where the first success came (an iteration's candidates train side by
side), plus the steps of screening's random episodes.

    python benchmarks/solve_cost.py [--tasks cartpole,acrobot] [--designers builtin,llm]
        [--modes eureka,no_screen,defaults,warm] [--total-timesteps N] [--budget STEPS]
        [--sandbox process]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

from common import PYTHON, ROOT, console, save, table
from scripted_rewards import SCRIPTS

sys.path.insert(0, str(ROOT / "tests"))

MODES = {
    "eureka": ["search.screening.enabled=false", "search.duplicate_correlation=null", "train.early_stop=false",
               "train.init=scratch"],
    "no_screen": ["search.screening.enabled=false", "train.init=scratch"],
    "defaults": [],
    "warm": ["train.init=best"],
}


def llm_script(task: str):
    """The scripted designer: each iteration's K answers, with wrong ones first
    (benchmarks/scripted_rewards.py); a fix request gets the task's good reward (an LLM told why
    its answer was turned away)."""
    from llm_script import Script, fenced
    from scripted_rewards import designer_answers

    good = fenced(SCRIPTS[task]["good"])
    return Script(designer=[fenced(code) for code in designer_answers(task)], fix=[lambda _request: good] * 40)


def solve(task: str, designer: str, mode: str, args, workdir: Path) -> dict:
    out = workdir / f"{task}-{designer}-{mode}"
    cmd = [str(Path(PYTHON).parent / "rewardsmith"), "solve", str(ROOT / "tasks" / f"{task}.yaml"), "--sandbox",
           args.sandbox, "--out", str(out)]
    if args.total_timesteps:
        cmd += ["--total-timesteps", str(args.total_timesteps)]
    for setting in MODES[mode]:
        cmd += ["--set", setting]
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(REWARDSMITH_CACHE_DIR=str(workdir / f"cache-{task}-{designer}-{mode}"),
               LITELLM_LOCAL_MODEL_COST_MAP="True")
    import subprocess

    start = time.perf_counter()
    if designer == "llm":
        from fake_llm_server import FakeLLMServer

        with FakeLLMServer(llm_script(task)) as server:
            cmd += ["--model", "openai/gpt-4o-mini", "--api-base", server.url + "/v1", "--samples", "4",
                    "--iterations", "2"]
            proc = subprocess.run(cmd, cwd=ROOT, env={**env, "OPENAI_API_KEY": "sk-bench"}, capture_output=True,
                                  text=True, timeout=7200)
    else:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=7200)
    wall = time.perf_counter() - start
    if proc.returncode not in (0, 1):
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return measure(out, wall, args.budget, task if designer == "llm" else None) | {"task": task, "designer": designer,
                                                                                  "mode": mode}


def measure(run: Path, wall: float, budget: int, llm_task: str | None) -> dict:
    summary = json.loads((run / "summary.json").read_text())
    started = (run / "run.json").stat().st_mtime
    results = {}
    for line in summary["candidates"]:
        path = run / f"iter_{line['iteration']:02d}" / f"cand_{line['index']:02d}" / "result.json"
        results[(line["iteration"], line["index"])] = (json.loads(path.read_text()), path.stat().st_mtime)
    screening = summary.get("screening") or {}
    spent = screening.get("random_env_steps", 0) + screening.get("probe_env_steps", 0)
    first, first_wall, best_in_budget = None, None, None
    steps_by_iteration: dict[int, int] = {}
    for (iteration, _), (result, _) in sorted(results.items()):
        steps = (result.get("train") or {}).get("env_steps", 0)
        steps_by_iteration[iteration] = steps_by_iteration.get(iteration, 0) + steps
    cumulative = spent
    for iteration in sorted(steps_by_iteration):
        cumulative += steps_by_iteration[iteration]
        members = [(r, t) for (i, _), (r, t) in results.items() if i == iteration]
        fit = [r["fitness"] for r, _ in members if r.get("fitness") is not None]
        if cumulative <= budget and fit:
            best_in_budget = max(fit + ([best_in_budget] if best_in_budget is not None else []))
        wins = [t for r, t in members if r.get("success")]
        if first is None and wins:
            first, first_wall = cumulative, min(wins) - started
    record = {"success": first is not None, "env_steps_to_first_success": first,
              "wall_s_to_first_success": round(first_wall, 1) if first_wall is not None else None,
              "best_fitness_in_budget": best_in_budget, "env_steps_total": spent + sum(steps_by_iteration.values()),
              "random_env_steps": screening.get("random_env_steps", 0), "wall_s": round(wall, 1),
              "screened": screening.get("screened", 0),
              "statuses": [r["status"] for _, (r, _) in sorted(results.items())]}
    # screening also works inside the designer's fix loop: an answer it turned away was replaced
    # by the designer's fix before it became a candidate (never trained either)
    turned_away = [a["reason"] for p in sorted(run.glob("iter_*/proposals.json")) for c in json.loads(p.read_text())
                   for a in c.get("origin", {}).get("attempts", []) if a.get("stage") == "screen"]
    record["screened_in_designer"] = {
        "wrong_order": sum("run against their task fitness" in r for r in turned_away),
        "constant": sum("pays the same on every state" in r or "returns are the same" in r for r in turned_away)}
    if llm_task:
        from scripted_rewards import kind_of

        record["candidates"] = [{"iteration": i, "index": j, "reward": kind_of(llm_task, r["code"]), "status": r["status"],
                                 "success": r.get("success", False),
                                 "stage": (r.get("critic") or {}).get("stage")}
                                for (i, j), (r, _) in sorted(results.items())]
    return record


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--tasks", default="cartpole", help=f"any of the shipped tasks; scripted LLM answers for "
                                                            f"{', '.join(SCRIPTS)}")
    parser.add_argument("--designers", default="builtin,llm")
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--total-timesteps", type=int, default=60_000,
                        help="each candidate's budget (0: the task's own)")
    parser.add_argument("--budget", type=int, default=150_000, help="env steps for 'best fitness in budget'")
    parser.add_argument("--sandbox", default="process")
    args = parser.parse_args()
    rows, records = [], []
    with tempfile.TemporaryDirectory(prefix="rs-solve-cost-") as tmp:
        for task in args.tasks.split(","):
            for designer in args.designers.split(","):
                if designer == "llm" and task not in SCRIPTS:
                    console.print(f"[dim]{task}: no scripted LLM answers (benchmarks/scripted_rewards.py)[/]")
                    continue
                for mode in args.modes.split(","):
                    console.print(f"[dim]{task} · {designer} · {mode}[/]")
                    r = solve(task, designer, mode, args, Path(tmp))
                    records.append(r)
                    rows.append([task, designer, mode, "yes" if r["success"] else "NO",
                                 r["env_steps_to_first_success"] or "-", r["wall_s_to_first_success"] or "-",
                                 r["best_fitness_in_budget"] if r["best_fitness_in_budget"] is not None else "-",
                                 r["env_steps_total"],
                                 r["screened"] + sum(r["screened_in_designer"].values()), r["wall_s"]])
    table("Solve cost: env steps and wall to the first success; best fitness within the budget",
          ["task", "designer", "mode", "solved", "steps to success", "wall to success (s)",
           f"best fitness ≤{args.budget:,} steps", "steps in all", "screened", "wall (s)"], rows)
    ratios = {}
    for designer in args.designers.split(","):
        base = [r for r in records if r["designer"] == designer and r["mode"] == "no_screen" and r["success"]]
        ours = [r for r in records if r["designer"] == designer and r["mode"] == "defaults" and r["success"]]
        if base and ours and {r["task"] for r in base} <= {r["task"] for r in ours}:
            b = sum(r["env_steps_to_first_success"] for r in base)
            o = sum(r["env_steps_to_first_success"] for r in ours if r["task"] in {x["task"] for x in base})
            ratios[designer] = round(b / o, 2)
            console.print(f"{designer}: env steps to the first success, summed over tasks: no_screen {b:,}, "
                          f"defaults {o:,} -> {b / o:.2f}x")
    save("solve_cost", {"args": vars(args), "runs": records, "no_screen_over_defaults": ratios})


if __name__ == "__main__":
    main()
