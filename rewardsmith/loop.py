"""The solve loop: the one place that calls more than one stage.

For each iteration: the designer proposes candidates from the history; the critic checks each
(static on the host, a dry run in a sandbox, optionally an LLM review); near-duplicates of
rewards already trained are skipped; the executor trains and evaluates the rest in sandboxes;
the analyzer turns each result into findings; the feedback source judges the iteration; the
LLM trajectory analyzer (if any) explains the candidates the designer will see next; the record
joins the history. Every step is written to the run directory first, so a resumed run skips
what is done.
"""

from __future__ import annotations

import contextlib
import hashlib
import shutil
import threading
import time
import uuid
from collections import OrderedDict
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .analyzer import analyze
from .critic import static_check
from .dedup import compact, find_duplicate
from .designer import Designer, DesignRequest
from .errors import (
    BudgetExceeded,
    DiskFull,
    FeedbackPending,
    InfrastructureError,
    LLMError,
    RewardsmithError,
    is_disk_full,
)
from .feedback import FeedbackSource
from .progress import dollars
from .runners.jobs import JobSpec, check_reward
from .runners.sandbox import Limits, Sandbox, kill_all
from .runs import RunDir, atomic_write_json
from .schemas import (
    BestCandidate,
    Candidate,
    CandidateLine,
    CandidateResult,
    CheckReport,
    CriticVerdict,
    FinalEvaluation,
    IterationRecord,
    LLMUsage,
    Summary,
)
from .task import TaskSpec
from .tensorboard_log import log_candidate

RECENT_CHECKS = 64  # verdicts remembered; older code is checked again should it come back

class Reporter(Protocol):
    """Receives progress events (from several threads at once)."""

    def iteration_started(self, iteration: int, iterations: int, candidates: list[Candidate]) -> None: ...
    def candidate_started(self, candidate: Candidate, total_steps: int) -> None: ...
    def candidate_progress(self, candidate: Candidate, payload: dict) -> None: ...
    def candidate_finished(self, result: CandidateResult, resumed: bool = False) -> None: ...
    def iteration_finished(self, record: IterationRecord) -> None: ...
    def message(self, text: str) -> None: ...
    def paused(self) -> AbstractContextManager: ...  # optional: no live display while a person is asked


class SilentReporter:
    paused = staticmethod(nullcontext)

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
    reviewer: object | None = None   # LLM critic: review(code, task, env, CheckReport) -> CriticVerdict
    explainer: object | None = None  # LLM trajectory analyzer: explain(result, task, env, show_fitness) -> str

    def __post_init__(self):
        self.env = self.task.env.describe()
        self.limits = Limits(timeout_s=self.task.sandbox.timeout_s, memory_mb=self.task.sandbox.memory_mb)
        self.stopping = threading.Event()
        previous = self.run.load_summary()
        self.wall_offset = previous.wall_s if previous else 0.0
        self.start = time.perf_counter()
        # recent verdicts by code hash: the designer's fix loop and the loop check the same code
        self._checks: OrderedDict[str, tuple[CriticVerdict, CheckReport | None]] = OrderedDict()
        self._checks_lock = threading.Lock()
        self.signatures: dict[tuple[int, int], list[float]] = {}  # rewards already trained

    # -- the critic: static check, dry run in the sandbox, optional LLM review (memoized) -----------
    def check(self, code: str) -> CriticVerdict:
        """The critic's verdict on ``code``; designers get this to ask for fixes before handing over."""
        return self._check(code)[0]

    def _check(self, code: str) -> tuple[CriticVerdict, CheckReport | None]:
        key = hashlib.sha256(code.encode()).hexdigest()
        with self._checks_lock:
            if key in self._checks:
                return self._checks[key]
        verdict, report = static_check(code, self.env.reward_arguments), None
        if verdict.ok:
            folder = self.run.path / "checks" / f"{key[:12]}-{uuid.uuid4().hex[:8]}"  # same code may run twice
            report = check_reward(self.task, code, folder, self.sandbox, self.limits, self.device)
            shutil.rmtree(folder, ignore_errors=True)
            with contextlib.suppress(OSError):
                folder.parent.rmdir()  # when no other check is running
            if not report.ok:
                verdict = CriticVerdict(ok=False, stage="dry_run", reason=report.reason, warnings=verdict.warnings)
            elif self.reviewer is not None:
                review = self.reviewer.review(code, self.task, self.env, report)
                verdict = review.model_copy(update={"warnings": verdict.warnings + review.warnings})
            else:
                verdict = verdict.model_copy(update={"stage": "dry_run"})
        with self._checks_lock:
            self._checks[key] = (verdict, report)
            while len(self._checks) > RECENT_CHECKS:
                self._checks.popitem(last=False)
        return verdict, report

    def _remember_signature(self, result: CandidateResult) -> None:
        if result.status in ("ok", "failed"):  # it went to training
            report = self.run.load_check(result.iteration, result.index)
            if report is not None and report.signature:
                self.signatures[(result.iteration, result.index)] = compact(report.signature)

    def _duplicate_of(self, candidate: Candidate, report: CheckReport | None) -> str | None:
        threshold = self.task.search.duplicate_correlation
        if threshold is None or report is None:
            return None
        match = find_duplicate(report.signature, self.signatures, threshold)
        if match is None:
            return None
        (iteration, index), rho = match
        return (f"nearly the same reward as iteration {iteration + 1} candidate {index} (correlation "
                f"{rho:.4f} on a shared batch of states); not trained")

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
                                                            self.task.search.samples, check=self.check,
                                                            notify=self.reporter.message))
            self.run.save_proposals(iteration, proposals)
        self.reporter.iteration_started(iteration, self.task.search.iterations, proposals)

        results: dict[int, CandidateResult] = {}
        self._verdicts: dict[int, CriticVerdict] = {}
        to_check: list[Candidate] = []
        for candidate in proposals:
            done = self.run.load_result(iteration, candidate.index)
            if done is not None:
                results[candidate.index] = done
                self._remember_signature(done)
                self.reporter.candidate_finished(done, resumed=True)
            else:
                to_check.append(candidate)
        with ThreadPoolExecutor(max_workers=4) as pool:
            checks = list(pool.map(lambda c: self._check(c.code), to_check))

        to_train: list[Candidate] = []
        for candidate, (verdict, report) in zip(to_check, checks):
            self._verdicts[candidate.index] = verdict
            folder = self.run.candidate_dir(iteration, candidate.index)
            atomic_write_json(folder / "critic.json", verdict)
            if report is not None:
                self.run.save_check(iteration, candidate.index, report)
            duplicate = self._duplicate_of(candidate, report) if verdict.ok else None
            if not verdict.ok or duplicate:
                status, reason = ("rejected", f"critic: {verdict.reason}") if not verdict.ok else ("skipped", duplicate)
                result = self._result(candidate, status, reason, critic=verdict)
                self.run.save_result(result)
                results[candidate.index] = result
                self.reporter.candidate_finished(result)
            else:
                to_train.append(candidate)
                self.signatures[(iteration, candidate.index)] = compact(report.signature)

        for candidate, result in self.executor.map(self._train_candidate, to_train):
            if self.stopping.is_set():
                continue  # killed by Ctrl-C: not a real result, redo it on resume
            self.run.save_result(result)
            log_candidate(self.run.path / "tensorboard", result)
            results[candidate.index] = result
            self.reporter.candidate_finished(result)

        record = IterationRecord(iteration=iteration,
                                 candidates=[results[c.index] for c in proposals if c.index in results])
        with getattr(self.reporter, "paused", nullcontext)():  # a person may be asked in the terminal
            feedback = self.feedback.judge(record, self.task)
        record = self._explain(record.model_copy(update={"feedback": feedback}))
        self.run.save_feedback(feedback)
        self.reporter.iteration_finished(record)
        self._report_llm_usage()
        return record

    def _explain(self, record: IterationRecord) -> IterationRecord:
        """The trajectory analyzer's account of the candidates the designer will see next (the
        chosen best, and the worst under preference feedback), saved with their results."""
        feedback = record.feedback
        if self.explainer is None or feedback is None:
            return record
        preference = feedback.kind != "metric"
        wanted = {feedback.best, feedback.worst if preference else None} - {None}
        candidates = []
        for result in record.candidates:
            if result.index in wanted and result.analysis is not None and not result.analysis.llm_summary:
                summary = self.explainer.explain(result, self.task, self.env, show_fitness=not preference)
                analysis = result.analysis.model_copy(update={"llm_summary": summary})
                result = result.model_copy(update={"analysis": analysis})
                self.run.save_result(result)
            candidates.append(result)
        return record.model_copy(update={"candidates": candidates})

    def _report_llm_usage(self) -> None:
        usage = self._llm_usage()
        if usage.requests or usage.cached:
            self.reporter.message(
                f"  LLM: {usage.requests} requests ({usage.cached} answered from the cache, {usage.retries} "
                f"retried) · {usage.prompt_tokens + usage.completion_tokens:,} tokens · {dollars(usage.cost_usd)}")

    def _llm_usage(self) -> LLMUsage:
        usage = getattr(self.designer, "usage", None)
        return usage() if callable(usage) else LLMUsage()

    # -- the loop ----------------------------------------------------------------------------------
    def solve(self) -> Summary:
        history = self.run.history()
        final = None
        for record in history:
            for result in record.candidates:
                self._remember_signature(result)
        try:
            for iteration in range(len(history), self.task.search.iterations):
                history.append(self._iteration(iteration, history))
                self.run.write_summary(self.summary(history, "running"))
            best = self._best(history)
            if self.final_seeds and best is not None:
                final = self._final_evaluation(best)
        except FeedbackPending:  # waits for a person's ranking; --resume picks it up
            self.run.write_summary(self.summary(history, "stopped"))
            raise
        except BudgetExceeded as exc:  # a clean stop: what is done is kept; --resume continues
            summary = self.summary(history, "stopped", stopped_reason=str(exc))
            self.run.write_summary(summary)
            return summary
        except (LLMError, InfrastructureError, OSError) as exc:
            # the model (after its retries), the disk or the sandbox engine became unusable: not
            # the candidates' fault, so stop with what is done and keep the run resumable
            if isinstance(exc, OSError):
                if not is_disk_full(exc):
                    raise
                exc = DiskFull(f"the disk is full: {exc}")
            self.stopping.set()
            kill_all()
            with contextlib.suppress(OSError, RewardsmithError):  # the disk may still be full
                self.run.write_summary(self.summary(history, "stopped", stopped_reason=str(exc)))
            raise type(exc)(f"{exc} (the run is kept; continue it with: rewardsmith solve --resume "
                            f"{self.run.path})") from None
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

    def summary(self, history: list[IterationRecord], status: str, final: FinalEvaluation | None = None,
                stopped_reason: str | None = None) -> Summary:
        results = [c for rec in history for c in rec.candidates]
        best = self._best(history)
        return Summary(
            task=self.task.name, status=status,
            best=BestCandidate(iteration=best.iteration, index=best.index, fitness=best.fitness,
                               success=best.success, reward_file=best.reward_file) if best else None,
            candidates=[CandidateLine(iteration=c.iteration, index=c.index, status=c.status, fitness=c.fitness,
                                      reason=c.reason, success=c.success) for c in results],
            wall_s=round(self.wall_offset + time.perf_counter() - self.start, 3),
            iterations_done=len(history),
            llm=self._llm_usage(), designer=self.designer.name, sandbox=self.sandbox.name, final=final,
            stopped_reason=stopped_reason)
