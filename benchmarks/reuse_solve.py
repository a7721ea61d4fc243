"""Experience reuse in a solve: the same builtin-designer solve of a SAC task in up to three ways,
through the CLI, with the task's own settings (iterations, samples, env steps per candidate)
unless told otherwise: ``on`` (the defaults: the candidates of an iteration share what they
collect live, and later iterations start from what earlier ones collected), ``across`` (reuse
across iterations only: ``train.share_live=false``) and ``off`` (from scratch:
``train.reuse_experience=false``).

Measured, for each way:
- env steps to the first success: summed over every candidate the solve trained up to the end
  of the first iteration in which a candidate succeeded (an iteration's candidates train
  together, so the solve has spent all of them by the time it sees the success; failed
  candidates count with their whole budget), and their training seconds summed likewise;
- the median env steps of a first-iteration candidate (what live sharing changes) and of a
  later one (what reuse across iterations changes; early stop at success, so fewer steps mean
  it got there sooner);
- the whole solve: env steps, successes, wall time.

Measured here on 2026-12-02 (2 shared cores, bwrap, ``--ways on,off``, the shipped tasks'
settings, one run): to the first success pendulum_sac 6,000 env steps on against 14,000 off
(2.33x; 7,000 in an earlier run), inverted_double_pendulum_sac 18,000 against 48,000 (2.67x),
inverted_pendulum_sac 18,000 against 38,000 (2.11x; 20,000-22,000 in three of four earlier runs).
Reuse across iterations alone (``across``) leaves the first success where it is (1.0x: a
first-iteration candidate succeeds) and makes later candidates 5-10x shorter.

    python benchmarks/reuse_solve.py [--sandbox bwrap] [--tasks pendulum_sac ...]
                                     [--ways on,across,off] [--set KEY=VALUE]
                                     [--iterations N --samples N --total-timesteps N]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path

from common import PYTHON, ROOT, console, run_timed, save, table

WAYS = {"on": ["train.reuse_experience=true"],                                # the defaults: live and across
        "across": ["train.reuse_experience=true", "train.share_live=false"],    # across iterations only
        "off": ["train.reuse_experience=false"]}                                # from scratch


def solve(task: str, way: str, args: argparse.Namespace, workdir: Path) -> dict:
    out = workdir / f"{task}-{way}"
    overrides = [f"--{flag.replace('_', '-')}={value}" for flag in ("iterations", "samples", "total_timesteps")
                 if (value := getattr(args, flag)) is not None]
    cmd = [str(Path(PYTHON).parent / "rewardsmith"), "solve", str(ROOT / "tasks" / f"{task}.yaml"),
           "--model", "builtin", "--sandbox", args.sandbox, *overrides,
           *[x for setting in [*args.set, *WAYS[way]] for x in ("--set", setting)], "--out", str(out), "--json"]
    wall, _ = run_timed(cmd, timeout=3 * 3600)
    results = [json.loads(p.read_text()) for p in out.glob("iter_*/cand_*/result.json")]
    trained = [r for r in results if r.get("train")]
    steps = lambda rs: sum(r["train"]["env_steps"] for r in rs)  # noqa: E731
    seconds = lambda rs: sum(r["train"]["wall_s"] for r in rs)  # noqa: E731
    succeeded = sorted(r["iteration"] for r in trained if r.get("success"))
    first = succeeded[0] if succeeded else None
    until = [r for r in trained if first is not None and r["iteration"] <= first]
    later = [r for r in trained if r["iteration"] > 0]
    first_iteration = [r["train"]["env_steps"] for r in trained if r["iteration"] == 0]
    return {"task": task, "way": way, "wall_s": round(wall, 1), "command": " ".join(cmd[1:]),
            "first_success_iteration": first + 1 if first is not None else None,
            "env_steps_to_first_success": steps(until) if until else None,
            "train_s_to_first_success": round(seconds(until), 1) if until else None,
            "first_median_env_steps": statistics.median(first_iteration) if first_iteration else None,
            "later_median_env_steps": statistics.median(r["train"]["env_steps"] for r in later) if later else None,
            "later_median_train_s": round(statistics.median(r["train"]["wall_s"] for r in later), 1) if later else None,
            "env_steps_all": steps(trained), "train_s_all": round(seconds(trained), 1),
            "successes": len(succeeded), "candidates": len(results),
            "per_candidate": [{k: r[k] for k in ("iteration", "index", "success", "fitness") if k in r}
                              | {k: r["train"].get(k) for k in ("env_steps", "wall_s", "update_s", "gradient_steps",
                                                                "reused_transitions", "shared_transitions",
                                                                "reused_share")}
                              for r in sorted(trained, key=lambda r: (r["iteration"], r["index"]))]}


def _ratio(off, on) -> str:
    return f"{off / on:.2f}x" if on and off else "-"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sandbox", default="process")
    parser.add_argument("--tasks", nargs="*",
                        default=["pendulum_sac", "inverted_pendulum_sac", "inverted_double_pendulum_sac"])
    parser.add_argument("--iterations", type=int, help="instead of the task's search.iterations")
    parser.add_argument("--samples", type=int, help="instead of the task's search.samples")
    parser.add_argument("--total-timesteps", type=int, help="instead of the task's train.total_timesteps")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a task setting for every way (repeatable), e.g. train.share_every=500")
    parser.add_argument("--ways", default="on,across,off",
                        help="comma-separated: on (the defaults: shared live within an iteration and reused across "
                             "iterations), across (reused across iterations only), off (from scratch); ratios are "
                             "against off")
    args = parser.parse_args()
    ways = [w.strip() for w in args.ways.split(",")]
    unknown = [w for w in ways if w not in WAYS]
    if unknown:
        parser.error(f"unknown ways {unknown}: choose from {', '.join(WAYS)}")
    rows, runs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for task in args.tasks:
            done = {way: solve(task, way, args, Path(tmp)) for way in ways}
            runs += done.values()
            console.print(json.dumps(list(done.values())))
            off = done.get("off", {})
            for way, r in done.items():
                rows.append([task, way, r["first_success_iteration"], r["env_steps_to_first_success"],
                             _ratio(off.get("env_steps_to_first_success"), r["env_steps_to_first_success"]),
                             r["first_median_env_steps"], r["later_median_env_steps"], r["env_steps_all"],
                             _ratio(off.get("env_steps_all"), r["env_steps_all"]),
                             f"{r['successes']}/{r['candidates']}", r["wall_s"]])
    table("Solve with experience shared live and reused (on), reused across iterations only (across) and from "
          "scratch (off), builtin designer",
          ["task", "way", "1st success in iteration", "env steps to it (whole iterations)", "x vs off",
           "1st-iteration candidates' median env steps", "later candidates' median", "whole solve env steps",
           "x vs off", "successes", "wall s"], rows)
    save("reuse_solve", {"sandbox": args.sandbox, "settings": args.set, "overrides": {k: getattr(args, k) for k in
                                                                ("iterations", "samples", "total_timesteps")},
                         "runs": runs})


if __name__ == "__main__":
    main()
