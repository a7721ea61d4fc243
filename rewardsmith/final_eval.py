"""The final, multi-seed evaluation of a run's best candidate (``rewardsmith eval RUN``).

A solve scores each candidate on one evaluation seed. Before trusting the winner, Eureka
evaluates its reward again over several seeds; so does this module, in two modes:

- ``policy`` (default): the saved ``policy.pt`` on ``seeds`` fresh evaluation seeds. Each seed is
  one ``evaluate`` job in the sandbox: it loads only the weights (``weights_only``), never the
  reward code.
- ``retrain``: train a new policy with the best reward for each training seed, then evaluate
  it (Eureka's protocol: it tells how reliably the reward, not one lucky policy, solves the task).

The result goes to ``RUN/final_eval.json``.
"""

from __future__ import annotations

import json
import shutil
import statistics
import time
from collections.abc import Callable
from pathlib import Path

from .errors import RunDirError
from .runners.jobs import JobSpec, _save_log, _write_job, train_and_evaluate
from .runners.sandbox import Limits, Sandbox
from .runs import RunDir, atomic_write_json
from .schemas import EvalSummary, FinalEvaluation, SeedEvaluation, WorkerJob
from .task import TaskSpec

EVAL_SEED_BASE = 2_000_003  # far from the seeds a solve uses


def best_candidate(run: RunDir) -> Path:
    summary = run.load_summary()
    if summary is None or summary.best is None:
        raise RunDirError(f"{run.path} has no best candidate yet (no candidate finished training)")
    return run.candidate_dir(summary.best.iteration, summary.best.index)


def _evaluate_policy_seed(task: TaskSpec, policy: Path, folder: Path, seed: int, sandbox: Sandbox,
                          limits: Limits, device: str) -> SeedEvaluation:
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    shutil.copyfile(policy, folder / "policy.pt")
    _write_job(folder, WorkerJob(kind="evaluate", task=task.model_dump(mode="json"), device=device,
                                 threads=limits.threads, eval_seed=seed))
    result = sandbox.run_worker("evaluate", folder, limits)
    _save_log(folder / "eval.log", result)
    failure = result.failure_reason(limits)
    if failure:
        return SeedEvaluation(seed=seed, fitness=None, status="failed", reason=failure)
    try:
        payload = json.loads(result.result_line or "")
        if "error" in payload:
            return SeedEvaluation(seed=seed, fitness=None, status="failed", reason=str(payload["error"])[:500])
        summary = EvalSummary.model_validate(payload)
    except ValueError:
        return SeedEvaluation(seed=seed, fitness=None, status="failed", reason="evaluation printed no valid result")
    return SeedEvaluation(seed=seed, fitness=summary.fitness, success=summary.success,
                          episode_length=summary.episode_length.mean)


def final_evaluation(run_path: Path, seeds: int, sandbox: Sandbox, limits: Limits, device: str = "auto",
                     retrain: bool = False, episodes: int | None = None,
                     on_seed: Callable[[SeedEvaluation], None] | None = None) -> FinalEvaluation:
    """Evaluate the best candidate of the run at ``run_path`` over ``seeds`` seeds."""
    start = time.perf_counter()
    run, task, _ = RunDir.open(run_path)
    candidate = best_candidate(run)
    if episodes is not None:
        task = task.with_overrides(fitness={"eval_episodes": episodes})
    threshold = task.fitness.success_threshold
    work = run.path / "final_eval"
    results: list[SeedEvaluation] = []
    for i in range(seeds):
        if retrain:
            seed = task.train.seed + 1 + i
            seeded = task.with_overrides(train={"seed": seed})
            folder = work / f"retrain_{seed}"
            code = (candidate / "reward.py").read_text()
            outcome = train_and_evaluate(JobSpec(seeded, code, folder, limits, device), sandbox, threads=limits.threads)
            ev = outcome.eval
            one = SeedEvaluation(seed=seed, fitness=ev.fitness if ev else None, success=bool(ev and ev.success),
                                 status=outcome.status, reason=outcome.reason,
                                 episode_length=ev.episode_length.mean if ev else None)
        else:
            policy = candidate / "policy.pt"
            if not policy.is_file():
                raise RunDirError(f"{policy} is missing: the best candidate kept no policy checkpoint")
            seed = EVAL_SEED_BASE + i
            one = _evaluate_policy_seed(task, policy, work / f"seed_{seed}", seed, sandbox, limits, device)
        results.append(one)
        if on_seed is not None:
            on_seed(one)
    scores = [r.fitness for r in results if r.fitness is not None]
    report = FinalEvaluation(
        candidate=run.relative(candidate), mode="retrain" if retrain else "policy",
        episodes_per_seed=task.fitness.eval_episodes, seeds=results,
        mean=statistics.fmean(scores) if scores else None,
        std=statistics.pstdev(scores) if scores else None,
        min=min(scores) if scores else None, max=max(scores) if scores else None,
        success_rate=sum(s >= threshold for s in scores) / len(results) if results else 0.0,
        success_threshold=threshold, wall_s=time.perf_counter() - start)
    atomic_write_json(run.path / "final_eval.json", report)
    return report
