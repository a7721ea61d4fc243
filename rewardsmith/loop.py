"""The solve loop: the one place that calls more than one stage.

For each iteration: the designer proposes candidates from the history; the critic checks each
on the host; the executor trains and evaluates the rest in sandboxes; the analyzer turns each
result into findings; the feedback source judges the iteration; the record joins the history.
Every step is written to the run directory first, so a resumed run skips what is done.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .analyzer import analyze
from .critic import static_check
from .designer import Designer, DesignRequest
from .feedback import FeedbackSource
from .runners.jobs import JobSpec
from .runners.sandbox import Limits, Sandbox, kill_all
from .runs import RunDir, atomic_write_json
from .schemas import (
    BestCandidate,
    Candidate,
    CandidateLine,
    CandidateResult,
    CriticVerdict,
    FinalEvaluation,
    IterationRecord,
    LLMUsage,
    Summary,
)
from .task import TaskSpec
from .tensorboard_log import log_candidate


class Reporter(Protocol):
    """Receives progress events (from several threads at once)."""

    def iteration_started(self, iteration: int, iterations: int, candidates: list[Candidate]) -> None: ...
    def candidate_started(self, candidate: Candidate, total_steps: int) -> None: ...
    def candidate_progress(self, candidate: Candidate, payload: dict) -> None: ...
    def candidate_finished(self, result: CandidateResult, resumed: bool = False) -> None: ...
    def iteration_finished(self, record: IterationRecord) -> None: ...
    def message(self, text: str) -> None: ...


class SilentReporter:
    def __getattr__(self, name):
        return lambda *args, **kwargs: None


@dataclass
class Solver:
    task: TaskSpec
    run: RunDir
    designer: Designer
    sandbox: Sandbox
    executor: object
    feedback: FeedbackSource
    reporter: Reporter
    device: str = "auto"
    final_seeds: int = 0  # retrain the best reward with this many other seeds at the end

    def __post_init__(self):
        self.env = self.task.env.describe()
        self.limits = Limits(timeout_s=self.task.sandbox.timeout_s, memory_mb=self.task.sandbox.memory_mb)
        self.stopping = threading.Event()
        previous = self.run.load_summary()
        self.wall_offset = previous.wall_s if previous else 0.0
        self.start = time.perf_counter()

    # -- one candidate (runs in an executor thread) ---------------------------------------------
    def _train_candidate(self, candidate: Candidate, threads: int, folder: Path | None = None,
                         task: TaskSpec | None = None) -> CandidateResult:
        folder = folder or self.run.candidate_dir(candidate.iteration, candidate.index)
        task = task or self.task
        spec = JobSpec(task, candidate.code, folder, self.limits, self.device)
        self.reporter.candidate_started(candidate, task.train.total_timesteps)
        outcome = self.executor.run_job(spec, self.sandbox, threads,
                                        on_progress=lambda p: self.reporter.candidate_progress(candidate, p))
        threshold = task.fitness.success_threshold
        analysis = analyze(outcome.train, outcome.eval, threshold, outcome.status, outcome.reason)
        return self._result(candidate, outcome.status, outcome.reason, train=outcome.train, eval=outcome.eval,
                            analysis=analysis, wall_s=outcome.wall_s,
                            fitness=outcome.eval.fitness if outcome.eval else None,
                            success=bool(outcome.eval and outcome.eval.success), folder=folder)

    def _result(self, candidate: Candidate, status: str, reason: str | None, folder: Path | None = None,
                **fields) -> CandidateResult:
        folder = folder or self.run.candidate_dir(candidate.iteration, candidate.index)
        critic = fields.pop("critic", None) or self._verdicts.get(candidate.index)
        return CandidateResult(iteration=candidate.iteration, index=candidate.index, status=status,
                               reason=reason, reward_file=self.run.relative(folder / "reward.py"),
                               code=candidate.code, origin=candidate.origin, critic=critic,
                               sandbox=self.sandbox.name, **fields)

    # -- one iteration ---------------------------------------------------------------------------
    def _iteration(self, iteration: int, history: list[IterationRecord]) -> IterationRecord:
        proposals = self.run.load_proposals(iteration)
        if proposals is None:
            proposals = self.designer.propose(DesignRequest(self.task, self.env, history, iteration,
                                                            self.task.search.samples))
            self.run.save_proposals(iteration, proposals)
        self.reporter.iteration_started(iteration, self.task.search.iterations, proposals)

        results: dict[int, CandidateResult] = {}
        self._verdicts: dict[int, CriticVerdict] = {}
        to_train: list[Candidate] = []
        for candidate in proposals:
            done = self.run.load_result(iteration, candidate.index)
            if done is not None:
                results[candidate.index] = done
                self.reporter.candidate_finished(done, resumed=True)
                continue
            verdict = static_check(candidate.code, self.env.reward_arguments)
            self._verdicts[candidate.index] = verdict
            atomic_write_json(self.run.candidate_dir(iteration, candidate.index) / "critic.json", verdict)
            if not verdict.ok:
                result = self._result(candidate, "rejected", f"critic: {verdict.reason}", critic=verdict)
                self.run.save_result(result)
                results[candidate.index] = result
                self.reporter.candidate_finished(result)
            else:
                to_train.append(candidate)

        for candidate, result in self.executor.map(self._train_candidate, to_train):
            if self.stopping.is_set():
                continue  # killed by Ctrl-C: not a real result, redo it on resume
            self.run.save_result(result)
            log_candidate(self.run.path / "tensorboard", result)
            results[candidate.index] = result
            self.reporter.candidate_finished(result)

        record = IterationRecord(iteration=iteration,
                                 candidates=[results[c.index] for c in proposals if c.index in results])
        feedback = self.feedback.judge(record, self.task)
        self.run.save_feedback(feedback)
        record = record.model_copy(update={"feedback": feedback})
        self.reporter.iteration_finished(record)
        return record

    # -- the loop ----------------------------------------------------------------------------------
    def solve(self) -> Summary:
        history = self.run.history()
        final = None
        try:
            for iteration in range(len(history), self.task.search.iterations):
                history.append(self._iteration(iteration, history))
                self.run.write_summary(self.summary(history, "running"))
            best = self._best(history)
            if self.final_seeds and best is not None:
                final = self._final_evaluation(best)
        except KeyboardInterrupt:
            self.stopping.set()
            kill_all()
            summary = self.summary(history, "stopped")
            self.run.write_summary(summary)
            raise
        summary = self.summary(history, "done", final)
        self.run.write_summary(summary)
        return summary

    def _final_evaluation(self, best: CandidateResult) -> FinalEvaluation:
        """Retrain the best reward from scratch with other seeds; finished seeds are kept on resume."""
        seeds = [self.task.train.seed + 1 + i for i in range(self.final_seeds)]
        self.reporter.message(f"final evaluation: retraining the best reward with {len(seeds)} other seeds")
        folders = {s: self.run.path / "final" / f"seed_{s}" for s in seeds}
        results = {s: r for s in seeds if (r := self.run.load(folders[s] / "result.json", CandidateResult))}
        todo = [Candidate(iteration=best.iteration, index=i, code=best.code, origin={"final_seed": s})
                for i, s in enumerate(seeds) if s not in results]
        self._verdicts = {}

        def train_seed(candidate: Candidate, threads: int) -> CandidateResult:
            seed = candidate.origin["final_seed"]
            task = self.task.with_overrides(train={"seed": seed})
            return self._train_candidate(candidate, threads, folder=folders[seed], task=task)

        for candidate, result in self.executor.map(train_seed, todo):
            if self.stopping.is_set():
                continue
            atomic_write_json(folders[candidate.origin["final_seed"]] / "result.json", result)
            results[candidate.origin["final_seed"]] = result
            self.reporter.candidate_finished(result)
        fitness = [results[s].fitness if s in results else None for s in seeds]
        scores = [f for f in fitness if f is not None]
        mean = sum(scores) / len(scores) if scores else None
        final = FinalEvaluation(
            reward_file=best.reward_file, seeds=seeds, fitness=fitness,
            statuses=[results[s].status if s in results else "failed" for s in seeds], mean=mean,
            std=(sum((f - mean) ** 2 for f in scores) / len(scores)) ** 0.5 if scores else None,
            success_rate=sum(bool(results[s].success) for s in results) / len(seeds))
        atomic_write_json(self.run.path / "final_eval.json", final)
        return final

    @staticmethod
    def _best(history: list[IterationRecord]) -> CandidateResult | None:
        scored = [c for rec in history for c in rec.candidates if c.status == "ok" and c.fitness is not None]
        return max(scored, key=lambda c: (c.fitness, -c.iteration, -c.index)) if scored else None

    def summary(self, history: list[IterationRecord], status: str, final: FinalEvaluation | None = None) -> Summary:
        results = [c for rec in history for c in rec.candidates]
        best = self._best(history)
        usage = getattr(self.designer, "usage", None)
        return Summary(
            task=self.task.name, status=status,
            best=BestCandidate(iteration=best.iteration, index=best.index, fitness=best.fitness,
                               success=best.success, reward_file=best.reward_file) if best else None,
            candidates=[CandidateLine(iteration=c.iteration, index=c.index, status=c.status, fitness=c.fitness,
                                      reason=c.reason, success=c.success) for c in results],
            wall_s=round(self.wall_offset + time.perf_counter() - self.start, 3),
            iterations_done=len(history),
            llm=usage() if callable(usage) else LLMUsage(),
            designer=self.designer.name, sandbox=self.sandbox.name, final=final)
