"""How many preference queries does the loop need? (ICPL's measure, with a scripted person.)

For each shipped task, run the solve loop one iteration at a time until the candidate the
feedback picked as best reaches the task's success threshold (or ``--max-iterations`` pass):
- ``metric``: the loop ranks by the ground-truth fitness (no person involved);
- ``synthetic``: a stand-in person ranks by fitness plus noise (``--noise``, std as a fraction
  of the success threshold); each iteration it ranks is one query;
- ``vlm``: ``--feedback vlm`` through the real client path (litellm over HTTP) against the
  scripted test server (``tests/fake_llm_server.py``), whose judge looks at the pixels of each
  contact sheet and prefers the episode whose last frame looks most like its first (a pole still
  up, a cart still near the middle). A naive judge on purpose: the row measures what the VLM
  machinery costs per query (image bytes, tokens as the server counts them and as litellm
  estimates a provider would, time) and how often such a judge's pick is the fittest, not what a
  real VLM would achieve. (OpenAI bills gpt-4o-mini's image tokens at a multiple, about gpt-4o's
  price per image; litellm's estimate does not, so read its dollar figure as a lower bound.)

Prints a table and writes ``benchmarks/results/preference_queries-<time>.json``.

    .venv/bin/python benchmarks/preference_queries.py                  # shipped tasks, their budgets
    .venv/bin/python benchmarks/preference_queries.py --tasks tasks/cartpole.yaml \
        --total-timesteps 12000 --seeds 0 1 --noise 0.1 0.5            # a budget where the reward matters
"""

from __future__ import annotations

import argparse
import io
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))  # the scripted test server

from common import save, table  # noqa: E402
from fake_llm_server import FakeLLMServer, Received  # noqa: E402
from llm_script import shown_candidates, vlm_ranking  # noqa: E402
from rich.console import Console  # noqa: E402

import rewardsmith.api as rs  # noqa: E402
from rewardsmith.errors import RewardsmithError  # noqa: E402
from rewardsmith.feedback.frames import GAP, TITLE_HEIGHT  # noqa: E402
from rewardsmith.report import judge_checks, load_results  # noqa: E402
from rewardsmith.runs import RunDir  # noqa: E402
from rewardsmith.task import load_task  # noqa: E402

VLM_MODEL = "openai/gpt-4o-mini"  # priced by litellm's list; the tokens are the test server's count

console = Console(stderr=True)


def picked_fitness(run_path: Path, iteration: int) -> tuple[float | None, float | None]:
    """Ground-truth fitness of the candidate the feedback picked, and the best fitness, in ``iteration``."""
    record = RunDir(run_path).history()[iteration]
    scores = {c.index: c.fitness for c in record.candidates if c.fitness is not None}
    best = record.feedback.best if record.feedback else None
    return scores.get(best), max(scores.values(), default=None)


def _tiles(sheet, count: int = 6, columns: int = 3):
    """The first and the last frame of a contact sheet, without their labels (frames.py's layout)."""
    rows = -(-count // columns)
    tile_w = (sheet.width - GAP * (columns + 1)) // columns
    tile_h = (sheet.height - TITLE_HEIGHT - GAP) // rows - GAP

    def tile(n):
        x, y = GAP + (n % columns) * (tile_w + GAP), TITLE_HEIGHT + GAP + (n // columns) * (tile_h + GAP)
        return sheet.crop((x, y + 20, x + tile_w, y + tile_h))  # below the label
    return tile(0), tile(count - 1)


def pixel_judge(request: Received) -> str:
    """The scripted VLM: ranks by how little the last frame differs from the first."""
    import numpy as np
    from PIL import Image

    shown = shown_candidates(request)
    if not shown:  # the preflight request, with its tiny image
        return "OK"
    scores = {}
    for index, image in zip(shown, request.images):
        first, last = _tiles(Image.open(io.BytesIO(image.data)).convert("RGB"))
        scores[index] = float(np.abs(np.asarray(first, float) - np.asarray(last, float)).mean())
    order = sorted(scores, key=lambda i: (scores[i], i))
    return vlm_ranking(order, note="pixel judge")


def provider_estimate(request: dict, run_path: Path, completion_tokens: int) -> dict:
    """What the request would count and cost at the provider, by litellm's token counter (which
    counts an image as OpenAI does: 85 tokens plus 170 per 512-pixel tile) and price list."""
    import base64

    import litellm

    messages = []
    for message in request["messages"]:
        content = message["content"]
        if isinstance(content, list):
            content = [{"type": "text", "text": part["text"]} if part["type"] == "text" else
                       {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(
                           (run_path / part["file"]).read_bytes()).decode()}} for part in content]
        messages.append({"role": message["role"], "content": content})
    tokens = litellm.token_counter(model=VLM_MODEL, messages=messages)
    prompt_cost, completion_cost = litellm.cost_per_token(model=VLM_MODEL, prompt_tokens=tokens,
                                                          completion_tokens=completion_tokens)
    return {"estimated_prompt_tokens": tokens, "estimated_cost_usd": prompt_cost + completion_cost}


def vlm_costs(run_path: Path) -> dict:
    """What the VLM's requests of a run carried and cost (from its logs in RUN/llm/)."""
    queries = []
    for request_file in sorted((run_path / "llm").glob("*-request.json")):
        request = json.loads(request_file.read_text())
        if not request["purpose"].startswith("vlm "):
            continue
        response = json.loads(request_file.with_name(request_file.name.replace("request", "response")).read_text())
        images = [part for part in request["messages"][-1]["content"] if isinstance(part, dict)
                  and part.get("type") == "image"] if isinstance(request["messages"][-1]["content"], list) else []
        estimate = provider_estimate(request, run_path, response.get("completion_tokens", 0))
        queries.append({"images": len(images),
                        "image_bytes": sum((run_path / i["file"]).stat().st_size for i in images),
                        "prompt_tokens": response.get("prompt_tokens", 0), "cost_usd": response.get("cost_usd", 0.0),
                        "wall_s": response.get("wall_s", 0.0), "cached": response.get("cached", False), **estimate})
    checks = judge_checks(RunDir(run_path).load_rankings(), load_results(RunDir(run_path)))
    return {"vlm_requests": len(queries), "vlm_queries": queries,
            "judge_agreed": sum(c.agrees for c in checks), "judge_checked": len(checks)}


def run_one(task, feedback: str, noise: float | None, seed: int, args, workdir: Path, vlm_base: str | None = None
            ) -> dict:
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
            vlm = {"vlm_model": VLM_MODEL, "vlm_api_base": vlm_base} if feedback == "vlm" else {}
            result = rs.solve(task, feedback=feedback, feedback_noise=noise, out=run_path, **common, **vlm)
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
    vlm = vlm_costs(run_path) if feedback == "vlm" else {}
    if not args.keep:
        shutil.rmtree(run_path, ignore_errors=True)
    return {"task": task.name, "feedback": feedback, "noise": noise, "seed": seed,
            "reached_at": reached, "queries": reached if feedback != "metric" else 0,
            "iterations_run": len(picked), "picked_fitness": picked, "best_fitness": best,
            "threshold": threshold, "env_steps": env_steps,
            "wall_s": round(time.perf_counter() - start, 1), "status": result.summary.status, **vlm}


def summarise(rows: list[dict]) -> list[dict]:
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["task"], r["feedback"], r["noise"]), []).append(r)
    out = []
    for (task, feedback, noise), runs in groups.items():
        reached = [r["reached_at"] for r in runs if r["reached_at"] is not None]
        row = {"task": task, "feedback": feedback, "noise": noise, "runs": len(runs),
               "reached": len(reached),
               "mean_iterations_to_threshold": round(statistics.mean(reached), 2) if reached else None,
               "iterations_per_seed": [r["reached_at"] for r in runs],
               "human_queries_total": sum(r["queries"] or r["iterations_run"] for r in runs)
               if feedback != "metric" else 0,
               "wall_s": round(sum(r["wall_s"] for r in runs), 1)}
        if feedback == "vlm":
            queries = [q for r in runs for q in r["vlm_queries"] if not q["cached"]]
            row.update(human_queries_total=0, vlm_requests=len(queries),
                       judge_agreed=f"{sum(r['judge_agreed'] for r in runs)}/{sum(r['judge_checked'] for r in runs)}",
                       image_kb_per_request=round(statistics.mean(q["image_bytes"] for q in queries) / 1024, 1)
                       if queries else None,
                       prompt_tokens_per_request=round(statistics.mean(q["prompt_tokens"] for q in queries))
                       if queries else None,
                       cost_usd_per_request=statistics.mean(q["cost_usd"] for q in queries) if queries else None,
                       estimated_prompt_tokens_per_request=round(statistics.mean(
                           q["estimated_prompt_tokens"] for q in queries)) if queries else None,
                       estimated_cost_usd_per_request=statistics.mean(q["estimated_cost_usd"] for q in queries)
                       if queries else None,
                       wall_s_per_request=round(statistics.mean(q["wall_s"] for q in queries), 3) if queries else None)
        out.append(row)
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
    parser.add_argument("--feedback", nargs="*", choices=["metric", "synthetic", "vlm"],
                        default=["metric", "synthetic", "vlm"],
                        help="the rows to run (vlm: the scripted pixel judge behind the test server)")
    args = parser.parse_args(argv)

    modes = ([("metric", None)] if "metric" in args.feedback else []) + \
        ([("synthetic", n) for n in args.noise] if "synthetic" in args.feedback else []) + \
        ([("vlm", None)] if "vlm" in args.feedback else [])
    rows, skipped = [], []
    workdir = Path(tempfile.mkdtemp(prefix="rs-prefq-"))
    os.environ["REWARDSMITH_CACHE_DIR"] = str(workdir / "llm-cache")  # every query is asked, none from a cache
    server = FakeLLMServer(pixel_judge).start()
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
                        row = run_one(task, feedback, noise, seed, args, workdir, vlm_base=server.url + "/v1")
                    except RewardsmithError as exc:
                        skipped.append({"task": task.name, "feedback": feedback, "seed": seed, "reason": str(exc)})
                        console.print(f"  skipped: {exc}", markup=False)
                        continue
                    console.print(f"  reached the threshold at iteration {row['reached_at']} · picked fitness "
                                  f"{row['picked_fitness']} · {row['wall_s']} s")
                    rows.append(row)
    finally:
        server.stop()
        shutil.rmtree(workdir, ignore_errors=True)

    summary = summarise(rows)
    table("Iterations (= preference queries for a person) to reach the success threshold",
          ["task", "feedback", "noise", "reached", "iterations per seed", "mean", "queries", "wall s"],
          [[x["task"], x["feedback"], "-" if x["noise"] is None else f"{x['noise']:g}", f"{x['reached']}/{x['runs']}",
            " ".join("-" if i is None else str(i) for i in x["iterations_per_seed"]),
            "-" if x["mean_iterations_to_threshold"] is None else f"{x['mean_iterations_to_threshold']:g}",
            str(x["human_queries_total"]), x["wall_s"]] for x in summary])
    vlm_rows = [x for x in summary if x["feedback"] == "vlm"]
    if vlm_rows:
        table(f"The VLM row, per request to the scripted judge ({VLM_MODEL} over HTTP to the test server; "
              "est.: litellm's count and price)",
              ["task", "requests", "best=fittest", "image KB", "tokens (server)", "tokens (est.)", "$ (est.)",
               "wall s"],
              [[x["task"], str(x["vlm_requests"]), x["judge_agreed"], str(x["image_kb_per_request"]),
                str(x["prompt_tokens_per_request"]), str(x["estimated_prompt_tokens_per_request"]),
                "-" if x["estimated_cost_usd_per_request"] is None else f"{x['estimated_cost_usd_per_request']:.5f}",
                str(x["wall_s_per_request"])] for x in vlm_rows])
    save("preference_queries", {
        "settings": {"max_iterations": args.max_iterations, "samples": args.samples,
                     "total_timesteps": args.total_timesteps, "noise": args.noise, "seeds": args.seeds,
                     "sandbox": args.sandbox, "designer": "builtin",
                     "vlm": f"{VLM_MODEL} at the scripted test server (pixel judge)"
                     if "vlm" in args.feedback else None},
        "summary": summary, "runs": rows, "skipped": skipped})
    return 0


if __name__ == "__main__":
    sys.exit(main())
