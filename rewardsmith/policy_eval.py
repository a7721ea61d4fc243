"""Multi-seed evaluation of a run's best policy (``rewardsmith eval RUN``).

A solve scores each candidate on one evaluation seed. ``rewardsmith eval`` loads the best
candidate's saved ``policy.pt`` and scores it again on ``seeds`` fresh evaluation seeds, each one
an ``evaluate`` job in the sandbox that loads only the weights (``weights_only``), never the
reward code. (Retraining the best reward from scratch per seed, Eureka's protocol for the
reward itself, is ``solve --final-seeds``.) The result goes to ``RUN/policy_eval.json``.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from pathlib import Path

from .errors import RunDirError
from .runners.jobs import evaluate_policy_file
from .runners.protocol import POLICY_FILE
from .runners.sandboxes import Limits, Sandbox
from .runs import RunDir, atomic_write_json
from .schemas import PolicyEvaluation, SeedEvaluation
from .task import TaskSpec

EVAL_SEED_BASE = 2_000_003  # far from the seeds a solve uses


def best_candidate(run: RunDir) -> Path:
    summary = run.load_summary()
    if summary is None or summary.best is None:
        raise RunDirError(f"{run.path} has no best candidate yet (no candidate finished training)")
    return run.candidate_dir(summary.best.iteration, summary.best.index)


def _evaluate_policy_seed(task: TaskSpec, policy: Path, folder: Path, seed: int, sandbox: Sandbox,
                          limits: Limits, device: str) -> SeedEvaluation:
    summary = evaluate_policy_file(task, policy, folder, sandbox, limits, device, seed)
    if isinstance(summary, str):
        return SeedEvaluation(seed=seed, fitness=None, status="failed", reason=summary)
    return SeedEvaluation(seed=seed, fitness=summary.fitness, success=summary.success,
                          episode_length=summary.episode_length.mean)


def final_evaluation(run_path: Path, seeds: int, sandbox: Sandbox, limits: Limits, device: str = "auto",
                     episodes: int | None = None,
                     on_seed: Callable[[SeedEvaluation], None] | None = None) -> PolicyEvaluation:
    """Evaluate the best policy of the run at ``run_path`` on ``seeds`` evaluation seeds."""
    start = time.perf_counter()
    run, task, _ = RunDir.open(run_path)
    if episodes is not None:
        task = task.with_settings({"fitness.eval_episodes": episodes}, source="--episodes")
    candidate = best_candidate(run)
    policy = candidate / POLICY_FILE
    if not policy.is_file():
        raise RunDirError(f"{policy} is missing: the best candidate kept no policy checkpoint")
    threshold = task.fitness.success_threshold
    results: list[SeedEvaluation] = []
    for i in range(seeds):
        seed = EVAL_SEED_BASE + i
        one = _evaluate_policy_seed(task, policy, run.path / "policy_eval" / f"seed_{seed}", seed, sandbox, limits,
                                    device)
        results.append(one)
        if on_seed is not None:
            on_seed(one)
    scores = [r.fitness for r in results if r.fitness is not None]
    report = PolicyEvaluation(
        candidate=run.relative(candidate), episodes_per_seed=task.fitness.eval_episodes, seeds=results,
        mean=statistics.fmean(scores) if scores else None,
        std=statistics.pstdev(scores) if scores else None,
        min=min(scores) if scores else None, max=max(scores) if scores else None,
        success_rate=sum(s >= threshold for s in scores) / len(results) if results else 0.0,
        success_threshold=threshold, wall_s=time.perf_counter() - start)
    atomic_write_json(run.path / "policy_eval.json", report)
    return report
