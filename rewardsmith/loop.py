"""The solve loop: the one place that calls more than one stage.

Before the first iteration, with trajectory screening on, random policies' episodes are recorded
into the run's episode store. For each iteration: the designer proposes candidates from the
history (with the critic at hand, to ask for fixes); the critic checks each (static on the host,
a dry run in a sandbox that also scores the stored episodes: a reward that ranks them against
their fitness is screened out; optionally an LLM review); near-duplicates of rewards already
trained are skipped; the executor trains and evaluates the rest in sandboxes, their clean
evaluations' episodes join the store;
the analyzer turns each result into findings; the feedback source judges the iteration; the
LLM trajectory analyzer (if any) explains the candidates the designer will see next; the record
joins the history. Every step is written to the run directory first, so a resumed run skips
what is done.
"""

from __future__ import annotations

import contextlib
import shutil
import threading
import time
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from .analyzer import result_of
from .critic import Critic
from .designer import Designer, DesignRequest
from .designer.builtin import RewardPlan
from .envs.description import EnvDescription
from .episodes import EpisodeStore, informative
from .errors import (
    BudgetExceeded,
    DiskFull,
    FeedbackPending,
    InfrastructureError,
    LLMError,
    RewardsmithError,
    is_disk_full,
)
from .experience import ExperienceStore, Transitions
from .experience import read as read_experience
from .feedback import FeedbackSource
from .feedback.ranking import person_overrules
from .progress import dollars
from .runners.executors import Executor
from .runners.jobs import EXPERIENCE, VIDEO_ONLY, CandidateJob, read_episodes, record_random_episodes
from .runners.sandboxes import Limits, kill_all
from .runners.sharing import ExperienceExchange
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
    RecordSpec,
    ScreeningCost,
    Summary,
)
from .task import TaskSpec
from .tensorboard_log import log_candidate

SAMPLED_EPISODES = 4  # a trained policy's episodes with sampled actions, stored beside its evaluation's
RANDOM_HOLDS = (1, 4, 16, 64)  # the first iteration's random policies hold each action this many steps
MIN_PROBE_STEPS = 2048
MODEL_RANDOM_EPISODES = 64   # search.screening.random_episodes unset: with an LLM designer
BUILTIN_RANDOM_EPISODES = 8  # ... with the builtin designer (where episodes start, for its scales)


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
    """A reporter that shows nothing (library use)."""

    paused = staticmethod(nullcontext)

    def iteration_started(self, iteration: int, iterations: int, candidates: list[Candidate]) -> None: ...
    def candidate_started(self, candidate: Candidate, total_steps: int) -> None: ...
    def candidate_progress(self, candidate: Candidate, payload: dict) -> None: ...
    def candidate_finished(self, result: CandidateResult, resumed: bool = False) -> None: ...
    def iteration_finished(self, record: IterationRecord) -> None: ...
    def message(self, text: str) -> None: ...


class Explainer(Protocol):
    """The LLM trajectory analyzer: what a trained policy did, in words."""

    def explain(self, result: CandidateResult, task: TaskSpec, env: EnvDescription, show_fitness: bool = True
                ) -> str: ...


@dataclass
class Solver:
    task: TaskSpec
    run: RunDir
    designer: Designer
    critic: Critic
    executor: Executor
    feedback: FeedbackSource
    reporter: Reporter
    device: str = "auto"
    final_seeds: int = 0  # retrain the best reward with this many other seeds at the end
    explainer: Explainer | None = None
    usage: Callable[[], LLMUsage] | None = None  # what the run's LLMs spent (default: the designer's)
    episodes: EpisodeStore | None = None  # the run's stored episodes (trajectory screening)

    def __post_init__(self):
        self.env = self.critic.env
        self.limits = Limits(timeout_s=self.task.sandbox.timeout_s, memory_mb=self.task.sandbox.memory_mb)
        self.stopping = threading.Event()
        previous = self.run.load_summary()
        self.wall_offset = previous.wall_s if previous else 0.0
        self.start = time.perf_counter()
        self._verdicts: dict[int, CriticVerdict] = {}
        self._init: Path | None = None  # this iteration's warm start
        train = self.task.train
        reuse = train.algorithm == "sac" and getattr(train, "reuse_experience", False)
        self.store = ExperienceStore(self.run.path / "experience", int(getattr(train, "experience_mb", 64) * 2**20)) \
            if reuse else None
        self._shared: Transitions | None = None  # what this iteration's candidates start from

    @property
    def sandbox_name(self) -> str:
        return self.executor.sandbox.name

    def _remember_trained(self, result: CandidateResult) -> None:
        if result.status in ("ok", "failed"):  # it went to training
            self.critic.remember_trained((result.iteration, result.index),
                                         self.run.load_check(result.iteration, result.index))

    # -- one candidate ---------------------------------------------------------------------------
    def _job(self, candidate: Candidate, folder: Path | None = None, task: TaskSpec | None = None,
             reuse: bool = True, exchange: ExperienceExchange | None = None) -> CandidateJob:
        record = VIDEO_ONLY if task is not None or self.episodes is None else \
            RecordSpec(episodes=self.task.fitness.eval_episodes, sampled=SAMPLED_EPISODES, video=True)
        init = self._init if task is None else None
        task = task or self.task
        reuse = reuse and self.store is not None
        return CandidateJob(
            task, candidate.code, folder or self.run.candidate_dir(candidate.iteration, candidate.index), self.limits,
            self.device, record=record, init_policy=init, key=candidate,
            on_start=lambda: self.reporter.candidate_started(candidate, task.train.total_timesteps),
            on_progress=lambda payload: self.reporter.candidate_progress(candidate, payload),
            experience=self._shared if reuse else None, keep_experience=reuse, exchange=exchange if reuse else None)

    def _exchange(self, jobs: int) -> ExperienceExchange | None:
        """Live sharing between this iteration's SAC candidates while they train (``train.share_live``),
        when more than one trains and they train on this machine (a cluster's nodes do not share)."""
        if self.store is None or jobs < 2 or not getattr(self.task.train, "share_live", False) \
                or not getattr(self.executor, "local", False):
            return None
        max_bytes = int(getattr(self.task.train, "experience_mb", 64) * 2**20)
        return ExperienceExchange(self.env, max_bytes, senders=jobs,
                                  max_rows=self.task.train.total_timesteps + self.task.env.num_envs)

    def _share_experience(self, iteration: int) -> None:
        """What this iteration's SAC candidates start from: the transitions the candidates of
        earlier iterations collected, as the host kept them."""
        if self.store is None:
            return
        self._shared = self.store.gather(self.env, before_iteration=iteration)
        if self._shared is not None:
            kept = [e for e in self.store.contributors() if e["iteration"] < iteration]
            self.reporter.message(f"  reusing {self._shared.rows:,} transitions of {len(kept)} earlier "
                                  f"candidate{'s' * (len(kept) != 1)} (relabelled by each candidate's reward)")

    def _keep_experience(self, job: CandidateJob) -> None:
        """Move the transitions a candidate collected (checked when its job ended, and again
        here: a Ray node brought them back) into the run's store."""
        if self.store is None:
            return
        candidate: Candidate = job.key
        found = read_experience(job.folder, EXPERIENCE, self.env, self.store.max_bytes)
        if isinstance(found, Transitions) and found.rows:
            self.store.add(candidate.iteration, candidate.index, found)
        for suffix in (".json", ".f32"):
            (job.folder / (EXPERIENCE + suffix)).unlink(missing_ok=True)

    def _trained(self, job: CandidateJob, outcome) -> CandidateResult:
        candidate: Candidate = job.key
        result = result_of(outcome, job.task.fitness.success_threshold, iteration=candidate.iteration,
                           index=candidate.index, reward_file=self.run.relative(job.folder / "reward.py"),
                           code=candidate.code, origin=candidate.origin, critic=self._verdicts.get(candidate.index))
        if job.init_policy is not None:
            result = result.model_copy(update={"init_from": self.run.relative(job.init_policy.parent)})
        return result

    def _warm_start(self, history: list[IterationRecord]) -> Path | None:
        """``train.init: best``: the best policy so far, while none has succeeded."""
        if getattr(self.task.train, "init", "scratch") != "best":
            return None
        best = self._best(history)
        if best is None or best.success:
            return None
        policy = self.run.candidate_dir(best.iteration, best.index) / "policy.pt"
        return policy if policy.is_file() else None

    def _result(self, candidate: Candidate, status: str, reason: str | None, critic: CriticVerdict) -> CandidateResult:
        """A candidate that did not train (rejected by the critic, or skipped as a duplicate)."""
        folder = self.run.candidate_dir(candidate.iteration, candidate.index)
        return CandidateResult(iteration=candidate.iteration, index=candidate.index, status=status,
                               reason=reason, reward_file=self.run.relative(folder / "reward.py"),
                               code=candidate.code, origin=candidate.origin, critic=critic,
                               sandbox=self.sandbox_name)

    # -- stored episodes ---------------------------------------------------------------------------
    def _store_episodes(self, folder: Path, candidate: Candidate) -> None:
        """The clean evaluation's episodes of a trained candidate join the run's store."""
        path = folder / "episodes.npz"
        if self.episodes is None or not path.exists():
            return
        batch = read_episodes(path, self.task)
        if not isinstance(batch, str):
            self.episodes.add(batch.with_meta(iteration=candidate.iteration, index=candidate.index))
        path.unlink(missing_ok=True)

    def _seed_episodes(self) -> None:
        """Before the first iteration: random policies' episodes, so that the first candidates
        can be screened too; when those hardly differ in task fitness (a goal a random policy
        never reaches), also a short probe training's. With the builtin designer, whose rewards
        follow the fitness by construction, only a few random episodes (they show the designer
        where episodes start) and no probe. Done once per run (a resumed run keeps them)."""
        store, spec = self.episodes, self.task.search.screening
        if store is None or store.seeded or not spec.enabled:
            return
        start = time.perf_counter()
        builtin = self.designer.name == "builtin"
        count = spec.random_episodes
        if count is None:
            count = BUILTIN_RANDOM_EPISODES if builtin else MODEL_RANDOM_EPISODES
        info: dict = {"random_episodes": 0}
        fitness: list[float] = []
        if count:
            per_hold = max(1, count // len(RANDOM_HOLDS))
            batch = record_random_episodes(self.task, self.run.path / "checks" / "random", self.executor.sandbox,
                                           self.limits, self.device, list(RANDOM_HOLDS), per_hold,
                                           seed=self.task.train.seed + 31337)
            if isinstance(batch, str):
                self.reporter.message(f"screening: no random episodes recorded ({batch})")
            else:
                store.add(batch)
                fitness = list(batch.fitness)
                info.update(random_episodes=len(batch), random_env_steps=batch.steps)
        shutil.rmtree(self.run.path / "checks" / "random", ignore_errors=True)
        if not builtin and not informative(fitness) and spec.probe_timesteps:
            fitness += self._probe(info)
        if not builtin and not informative(fitness):
            self.reporter.message("screening: the first iteration's episodes hardly differ in task fitness; its "
                                  "candidates are not screened")
        info["wall_s"] = round(time.perf_counter() - start, 3)
        store.mark_seeded(info)

    def _probe(self, info: dict) -> list[float]:
        """A short training of the builtin designer's reward (made from the task's fitness,
        never from a model), whose evaluation episodes join the store; their fitness."""
        spec, store = self.task.search.screening, self.episodes
        assert store is not None
        try:
            plan = RewardPlan(self.task.fitness.expression, self.env, self._starts())
            code = plan.render(plan.default_params())
        except Exception as exc:  # an expression the builtin designer cannot turn into a reward
            self.reporter.message(f"screening: no probe training ({exc})")
            return []
        # at most a tenth of one candidate's budget; below a few thousand steps a probe learns nothing
        steps = min(spec.probe_timesteps, self.task.train.total_timesteps // 10)
        if steps < MIN_PROBE_STEPS:
            return []
        self.reporter.message(f"screening: random policies' episodes hardly differ in task fitness; a probe "
                              f"training of {steps:,} env steps records some that may")
        folder = self.run.path / "checks" / "probe"
        task = self.task.with_overrides(train={"total_timesteps": steps})
        job = CandidateJob(task, code, folder, self.limits, self.device,
                           record=RecordSpec(episodes=self.task.fitness.eval_episodes, sampled=SAMPLED_EPISODES))
        fitness: list[float] = []
        for _, outcome in self.executor.run([job]):
            if outcome.train is not None:
                info["probe_env_steps"] = outcome.train.env_steps
            path = folder / "episodes.npz"
            batch = read_episodes(path, self.task) if outcome.status == "ok" and path.exists() else None
            if batch is None or isinstance(batch, str):
                self.reporter.message(f"screening: the probe training recorded no episodes "
                                      f"({batch or outcome.reason or outcome.status})")
            else:
                store.add(batch.with_meta(source="probe"))
                fitness = list(batch.fitness)
                info["probe_episodes"] = len(batch)
        shutil.rmtree(folder, ignore_errors=True)
        return fitness

    def _starts(self) -> dict[str, tuple[float, float, float]]:
        """Where the stored random episodes started (for the designer's scales)."""
        return self.episodes.start_values() if self.episodes is not None else {}

    # -- one iteration ---------------------------------------------------------------------------
    def _iteration(self, iteration: int, history: list[IterationRecord]) -> IterationRecord:
        proposals = self.run.load_proposals(iteration)
        if proposals is None:
            proposals = self.designer.propose(DesignRequest(self.task, self.env, history, iteration,
                                                            self.task.search.samples, check=self.critic.check,
                                                            notify=self.reporter.message, starts=self._starts()))
            self.run.save_proposals(iteration, proposals)
        self.reporter.iteration_started(iteration, self.task.search.iterations, proposals)

        results: dict[int, CandidateResult] = {}
        self._verdicts = {}
        self._init = self._warm_start(history)
        to_check: list[Candidate] = []
        for candidate in proposals:
            done = self.run.load_result(iteration, candidate.index)
            if done is not None:
                results[candidate.index] = done
                self._remember_trained(done)
                self.reporter.candidate_finished(done, resumed=True)
            else:
                to_check.append(candidate)
        checks = self.critic.review_all([c.code for c in to_check])

        to_train: list[Candidate] = []
        for candidate, (verdict, report) in zip(to_check, checks):
            self._verdicts[candidate.index] = verdict
            folder = self.run.candidate_dir(iteration, candidate.index)
            atomic_write_json(folder / "critic.json", verdict)
            if report is not None:
                self.run.save_check(iteration, candidate.index, report)
            duplicate = self.critic.duplicate_of(report) if verdict.ok else None
            if not verdict.ok or duplicate:
                if not verdict.ok:
                    status = "rejected"
                    reason = verdict.reason if verdict.stage == "screen" else f"critic: {verdict.reason}"
                else:
                    (of_iteration, of_index), rho = duplicate  # type: ignore[misc]  # keys are (iteration, index)
                    status, reason = "skipped", (f"nearly the same reward as iteration {of_iteration + 1} candidate "
                                                 f"{of_index} (correlation {rho:.4f} on a shared batch of states); "
                                                 "not trained")
                result = self._result(candidate, status, reason, verdict)
                self.run.save_result(result)
                results[candidate.index] = result
                self.reporter.candidate_finished(result)
            else:
                to_train.append(candidate)
                self.critic.remember_trained((iteration, candidate.index), report)

        self._share_experience(iteration)
        exchange = self._exchange(len(to_train))
        try:
            for job, outcome in self.executor.run(self._job(c, exchange=exchange) for c in to_train):
                if self.stopping.is_set():
                    continue  # killed by Ctrl-C: not a real result, redo it on resume
                candidate, result = job.key, self._trained(job, outcome)
                self._store_episodes(job.folder, candidate)
                self._keep_experience(job)
                self.run.save_result(result)
                log_candidate(self.run.path / "tensorboard", result)
                results[candidate.index] = result
                self.reporter.candidate_finished(result)
        finally:
            if exchange is not None:
                exchange.close()
                for problem in exchange.problems:
                    self.reporter.message(f"  shared experience of {problem}: no more of it was passed on")

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
        usage = self.usage or getattr(self.designer, "usage", None)
        return usage() if callable(usage) else LLMUsage()

    def _person_ranking_wins(self, history: list[IterationRecord]) -> None:
        """A person's ranking of the last finished iteration, saved after it was judged (by a VLM,
        or by the person before), replaces that judgement while the next iteration is not designed."""
        if not history or self.run.load_proposals(len(history)) is not None:
            return
        feedback = person_overrules(self.run, history[-1])
        if feedback is None:
            return
        before = history[-1].feedback
        record = self._explain(history[-1].model_copy(update={"feedback": feedback}))
        self.run.save_feedback(feedback)
        history[-1] = record
        self.reporter.message(f"iteration {record.iteration + 1}: a person's ranking (best {feedback.best}) replaces "
                              f"the {before.kind if before else ''} judgement (best {before.best if before else '-'})")

    # -- the loop ----------------------------------------------------------------------------------
    def solve(self) -> Summary:
        history = self.run.history()
        final = None
        for record in history:
            for result in record.candidates:
                self._remember_trained(result)
        try:
            self._person_ranking_wins(history)
            if len(history) < self.task.search.iterations:
                self._seed_episodes()
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
        # from scratch, as the search's candidates would train without the others' experience
        jobs = [self._job(c, folders[c.origin["final_seed"]], self.task.with_overrides(train={"seed": c.origin["final_seed"]}),
                          reuse=False) for c in todo]
        for job, outcome in self.executor.run(jobs):
            if self.stopping.is_set():
                continue
            candidate, result = job.key, self._trained(job, outcome)
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
            llm=self._llm_usage(), designer=self.designer.name, sandbox=self.sandbox_name, final=final,
            stopped_reason=stopped_reason,
            env_steps=sum(c.train.env_steps for c in results if c.train is not None) + self._probe_env_steps(),
            screening=self._screening_cost(results))

    def _probe_env_steps(self) -> int:
        return int(self.episodes.seed_info.get("probe_env_steps", 0)) if self.episodes is not None else 0

    def _screening_cost(self, results: list[CandidateResult]) -> ScreeningCost | None:
        if self.episodes is None:
            return None
        seed = self.episodes.seed_info
        return ScreeningCost(random_episodes=int(seed.get("random_episodes", 0)),
                             random_env_steps=int(seed.get("random_env_steps", 0)),
                             probe_env_steps=int(seed.get("probe_env_steps", 0)),
                             wall_s=float(seed.get("wall_s", 0.0)),
                             screened=sum(c.critic is not None and c.critic.stage == "screen" for c in results),
                             stored_episodes=len(self.episodes.entries))
