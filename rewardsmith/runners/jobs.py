"""The guest's jobs as the host runs them: ``check`` (a dry run), ``train``, ``evaluate`` and ``score``.

A candidate is one :class:`CandidateJob`: it trains with the reward code in one sandbox, then
its fitness is measured in a second, clean sandbox. The training job can write anything into
its own folder (``work/``); the host reads back only ``outcome.json`` (size-capped,
schema-checked) and ``policy.pt`` (a regular file, loaded later with ``weights_only``). The
evaluation job gets a fresh folder with a copy of the checkpoint and no reward code; its fitness
is the only score that counts, and the episodes it records (states, actions, the video's frames)
are trusted data. The video's reward trace comes from a ``score`` job (the reward code on those
recorded states, in a third folder), started ahead so that its start-up overlaps the training.

Every job goes the same way (:func:`run_guest`): write ``job.json``, run the guest in the
sandbox, keep its log, and read its reply: the job's failure (timeout, out of memory, crash) or
the record on its last ``@@result`` line.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from ..episodes import EpisodeBatch, EpisodeError, variable_shapes
from ..errors import DiskFull, SandboxLacks, is_disk_full
from ..experience import Transitions
from ..runs import atomic_write_bytes, atomic_write_text
from ..schemas import (
    CheckReport,
    EvalSummary,
    RecordSpec,
    RolloutTrace,
    RunsAs,
    ScoreReport,
    Status,
    TrainLog,
    WorkerJob,
    WorkerOutcome,
)
from ..task import TaskSpec
from ..video import GIF, MP4, encode_videos, load_frames
from .protocol import (
    EPISODES_FILE,
    EXPERIENCE_IN,
    EXPERIENCE_OUT,
    FRAMES_FILE,
    GO_FILE,
    INIT_POLICY_FILE,
    JOB_FILE,
    OUTCOME_FILE,
    POLICY_FILE,
    POLICY_SAVED,
    PROGRESS,
    REWARD_FILE,
    SCORES_FILE,
    TRACE_FILE,
    VIDEO_FILE,
    VIDEO_INFO_FILE,
)
from .sandboxes.base import MEMORY_ERROR_MARKERS, Limits, Sandbox, SandboxResult

MAX_OUTCOME_BYTES = 4 * 1024 * 1024
MAX_POLICY_BYTES = 256 * 1024 * 1024
MAX_LOG_BYTES = 256 * 1024
MAX_TRACE_BYTES = 8 * 1024 * 1024
MAX_FRAMES_BYTES = 96 * 1024 * 1024
MAX_EPISODES_BYTES = 64 * 1024 * 1024   # the episodes one evaluation job records
MAX_SCORES_BYTES = 64 * 1024 * 1024
CHECK_TIMEOUT_S = 120.0
MAX_SIGNATURE = 4096
ENOSPC_MESSAGE = "No space left on device"
NEARLY_FULL_BYTES = 16 * 1024 * 1024
SCRATCH = ("work", "eval", "score")  # a candidate's sandbox folders, removed once it is done
# What train_and_evaluate leaves in a candidate's folder, and the most each file may hold (a log
# is the capped tail of a job's output, decoded: up to 3 bytes per byte kept, plus notes). An
# executor that runs candidates on another machine brings these back, read with read_untrusted.
MAX_EXPERIENCE_BYTES = 256 * 1024 * 1024  # SACConfig.experience_mb's bound
EXPERIENCE = "experience"  # the stem of the transitions a SAC candidate collected, checked (host-written)
CANDIDATE_FILES = {POLICY_FILE: MAX_POLICY_BYTES, "train.log": 4 * MAX_LOG_BYTES, "eval.log": 4 * MAX_LOG_BYTES,
                   TRACE_FILE: 2 * MAX_TRACE_BYTES, MP4: MAX_FRAMES_BYTES, GIF: MAX_FRAMES_BYTES,
                   EPISODES_FILE: MAX_EPISODES_BYTES,
                   EXPERIENCE + ".json": 64 * 1024, EXPERIENCE + ".f32": MAX_EXPERIENCE_BYTES}
VIDEO_ONLY = RecordSpec(video=True)

ProgressFn = Callable[[dict], None]
R = TypeVar("R", bound=BaseModel)


@dataclass(frozen=True)
class CandidateJob:
    """One candidate to train and evaluate: reward code and task (with its seed) in, a
    :class:`JobOutcome` and the artifacts in ``folder`` out. ``key`` is the caller's handle,
    handed back with the outcome; the callbacks stay on the host.

    SAC only: ``experience`` (transitions of earlier candidates, checked by the host) is handed to
    the training job to start from; with ``keep_experience`` the transitions the job collected
    are read back, checked and left in ``folder`` as ``experience.json`` and ``experience.f32``;
    with an ``exchange`` (:class:`~.sharing.ExperienceExchange`) the training job shares what it
    collects, while it trains, with the other jobs in the same exchange."""

    task: TaskSpec
    reward_code: str
    folder: Path
    limits: Limits
    device: str = "auto"
    record: RecordSpec = VIDEO_ONLY  # what its evaluation records besides the fitness
    init_policy: Path | None = None   # warm start: the policy (a run's policy.pt) its training starts from
    key: Any = field(default=None, compare=False)
    on_start: Callable[[], None] | None = field(default=None, compare=False)
    on_progress: ProgressFn | None = field(default=None, compare=False)
    experience: Transitions | None = field(default=None, compare=False)
    keep_experience: bool = False
    exchange: Any = field(default=None, compare=False)

    def portable(self, folder: Path) -> CandidateJob:
        """The same job in another folder, without the host's handle, callbacks and live sharing
        (for a cluster node)."""
        return replace(self, folder=folder, key=None, on_start=None, on_progress=None, exchange=None)


@dataclass(frozen=True)
class JobOutcome:
    status: Status
    reason: str | None
    train: TrainLog | None
    eval: EvalSummary | None
    wall_s: float
    sandbox: str
    runs_as: RunsAs = "python"            # as the training job reported it
    torchscript_error: str | None = None


# ------------------------------------------------------------------------- reading what a job wrote

def read_untrusted(path: Path | str, max_bytes: int, dir_fd: int | None = None) -> bytes | None:
    """Read a file a sandbox wrote: a regular file only (no symlink, FIFO or device), capped
    (``path`` relative to the open folder ``dir_fd`` if given)."""
    try:  # O_NONBLOCK: opening a FIFO planted by the job must not hang the host
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=dir_fd)
    except OSError:
        return None
    with os.fdopen(fd, "rb") as f:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
            return None
        return f.read(max_bytes)


# Errors that mean the reward tried something the sandbox blocks, and how to say so.
BLOCKED = (
    (("Network is unreachable", "Connection refused", "Name or service not known",
      "Temporary failure in name resolution", "No route to host", "[Errno 97]"),
     "tried to use the network (blocked by the sandbox)"),
    (("Read-only file system",), "tried to write outside its folder (blocked by the sandbox)"),
)


def explain_blocked(reason: str | None) -> str | None:
    """Prefix a failure reason with what the reward tried, when its error shows it."""
    for markers, what in BLOCKED:
        if reason and any(m in reason for m in markers):
            return f"{what}: {reason}"
    return reason


# ------------------------------------------------------------------------------ one guest job

def write_job(folder: Path, job: WorkerJob) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / JOB_FILE).write_text(job.model_dump_json(indent=1))


@dataclass(frozen=True)
class GuestReply:
    """How a guest job ended: ``failure`` says why it did not end normally (``None`` if it
    did); ``result`` is its last ``@@result`` line, parsed (``None`` if there was none)."""

    sandbox: SandboxResult
    failure: str | None
    result: dict | None

    def record(self, model: type[R], what: str) -> R | str:
        """The result as ``model``, or a sentence saying why there is none."""
        if self.failure:
            return f"{what} {self.failure}" if what else self.failure
        if self.result is None:
            return f"{what or 'the job'} printed no result"
        if "error" in self.result:
            return str(self.result["error"])[:500]
        try:
            return model.model_validate(self.result)
        except ValidationError:
            return f"{what or 'the job'} printed a malformed result"


def read_reply(result: SandboxResult, limits: Limits, log: Path, sandbox: Sandbox, job: WorkerJob) -> GuestReply:
    """Keep the job's output in ``log`` and read its reply. A job that could not build its env,
    or (with reward code) ended before it got to loading the reward, stops the run: that is the
    sandbox's doing, not the reward's (:class:`SandboxLacks`)."""
    save_job_log(log, result)
    env_name = f"{job.task['env']['backend']}:{job.task['env']['id']}"
    started = result.environment_error or (result.output if not result.reward_loaded else "")
    if any(marker in started for marker in (*MEMORY_ERROR_MARKERS, "failed to map segment")):
        raise SandboxLacks(f"the {sandbox.name} sandbox ran out of memory while the {job.kind} job started, before "
                           f"any reward code ran (limit {limits.memory_mb} MB): raise --memory (sandbox.memory_mb)")
    if result.environment_error is not None:
        raise SandboxLacks(f"the {sandbox.name} sandbox cannot build {env_name} (the host can): "
                           f"{result.environment_error}; {sandbox.missing_hint()}")
    if job.kind != "evaluate" and not result.reward_loaded and result.timed_out:
        raise SandboxLacks(f"the {sandbox.name} sandbox did not get the {job.kind} job for {env_name} as far as the "
                           f"reward within its time limit ({limits.timeout_s:g} s): this machine is too slow or too "
                           "busy for that limit; raise --timeout (sandbox.timeout_s)")
    if job.kind != "evaluate" and not result.reward_loaded and result.failure_reason(limits):
        tail = " | ".join(result.output.strip().splitlines()[-2:])[-300:]
        raise SandboxLacks(f"the {sandbox.name} sandbox could not start the {job.kind} job for {env_name} "
                           f"({result.failure_reason(limits)}{': ' + tail if tail else ''}); {sandbox.missing_hint()}")
    payload = None
    try:
        payload = json.loads(result.result_line) if result.result_line else None
    except ValueError:
        pass
    return GuestReply(result, result.failure_reason(limits), payload if isinstance(payload, dict) else None)


def run_guest(sandbox: Sandbox, folder: Path, job: WorkerJob, limits: Limits, log: Path,
              on_line: Callable[[str], None] | None = None) -> GuestReply:
    """Write the job into ``folder``, run the guest there in ``sandbox`` and read its reply."""
    write_job(folder, job)
    return read_reply(sandbox.run_worker(job.kind, folder, limits, on_line=on_line), limits, log, sandbox, job)


def save_job_log(path: Path, result: SandboxResult) -> None:
    """Keep the job's output next to its results; stop the run if the job failed for want of disk
    space (not the reward's fault: the candidate is redone on ``--resume``)."""
    if result.returncode != 0 and ENOSPC_MESSAGE in result.output and _nearly_full(path.parent):
        raise DiskFull(f"the disk is full: a job in {path.parent} could not write its files")
    text = result.output[-MAX_LOG_BYTES:]
    if result.output_dropped:
        text = f"[{result.output_dropped} bytes of earlier output dropped]\n" + text
    try:
        path.write_text(text)
    except OSError as exc:
        if is_disk_full(exc):
            raise DiskFull(f"the disk is full: could not write {path}") from None
        raise


def _nearly_full(folder: Path) -> bool:
    """Checked as well as the message, which reward code could print to stop a run."""
    return shutil.disk_usage(folder).free < NEARLY_FULL_BYTES


# ------------------------------------------------------------------------------------ check

def check_reward(task: TaskSpec, code: str, folder: Path, sandbox: Sandbox, limits: Limits,
                 device: str = "auto", episodes: bytes | None = None) -> CheckReport:
    """Dry-run reward code in a sandbox on states of a short random rollout (``guest check``);
    with ``episodes`` (an :class:`~rewardsmith.episodes.EpisodeBatch` file), also its return on
    each of those stored episodes (trajectory screening, in the same process).

    The report is untrusted (the reward ran in that process): it is schema-checked and bounded,
    and it only decides whether a candidate is trained and whether it duplicates another.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / REWARD_FILE).write_text(code)
    if episodes is not None:
        (folder / EPISODES_FILE).write_bytes(episodes)
    limits = replace(limits, timeout_s=min(limits.timeout_s, CHECK_TIMEOUT_S), threads=1)
    job = WorkerJob(kind="check", task=task.model_dump(mode="json"), reward_file=REWARD_FILE, device=device, threads=1,
                    episodes_file=EPISODES_FILE if episodes is not None else None)
    reply = run_guest(sandbox, folder, job, limits, folder / "check.log")
    report = reply.record(CheckReport, "")
    if isinstance(report, str):
        return CheckReport(ok=False, reason=f"the dry run failed: {report}" if reply.failure else
                           "the dry run printed no result")
    return report.model_copy(update={"signature": report.signature[:MAX_SIGNATURE],
                                     "components": report.components[:64],
                                     "returns": report.returns[:MAX_SIGNATURE]})


# ------------------------------------------------------------------------- recorded episodes

def read_episodes(path: Path, task: TaskSpec, max_bytes: int = MAX_EPISODES_BYTES) -> EpisodeBatch | str:
    """Episodes a sandboxed job wrote (regular file, capped, parsed without pickles, checked
    against the env's variables and episode length), or why they are unusable."""
    raw = read_untrusted(path, max_bytes)
    if raw is None:
        return f"no readable {path.name} (missing, not a regular file, or over {max_bytes} bytes)"
    try:
        return EpisodeBatch.from_bytes(raw, variable_shapes(task.env.describe()), task.env.max_episode_steps)
    except EpisodeError as exc:
        return f"{path.name} is unusable: {exc}"


def score_job(task: TaskSpec, code: str, per_step: bool = False, wait: bool = False, gamma: float = 1.0,
              device: str = "auto") -> WorkerJob:
    return WorkerJob(kind="score", task=task.model_dump(mode="json"), reward_file=REWARD_FILE, device=device,
                     threads=1, episodes_file=EPISODES_FILE, per_step=per_step, wait=wait, gamma=gamma)


def read_score(reply: GuestReply, episodes: int) -> ScoreReport | str:
    """A score job's report (untrusted: the reward ran there), checked against what it was given."""
    report = reply.record(ScoreReport, "the score job")
    if isinstance(report, str):
        return report
    if len(report.returns) != episodes or len(report.totals) != episodes:
        return f"the score job scored {len(report.returns)} episodes of {episodes}"
    return report.model_copy(update={"components": report.components[:64]})


def read_step_scores(path: Path, steps: int) -> tuple[list[float], dict[str, list[float]]] | str:
    """A score job's per-step reward and components (``scores.npz``), checked: float arrays of
    ``steps`` finite values, no pickles."""
    import numpy as np

    raw = read_untrusted(path, MAX_SCORES_BYTES)
    if raw is None:
        return f"no readable {path.name}"
    try:
        import io

        with np.load(io.BytesIO(raw), allow_pickle=False) as data:
            arrays = {k: data[k] for k in list(data.files)[:65]}
    except (ValueError, OSError, EOFError) as exc:
        return f"{path.name} is unusable: {exc}"
    if "reward" not in arrays or any(k != "reward" and not k.startswith("comp:") for k in arrays):
        return f"{path.name} holds unexpected arrays"
    for name, value in arrays.items():
        if value.shape != (steps,) or value.dtype.kind != "f" or not np.isfinite(value).all():
            return f"{path.name}: {name} is not {steps} finite numbers"
    return arrays["reward"].tolist(), {k[5:]: v.tolist() for k, v in arrays.items() if k != "reward"}


def score_rewards(task: TaskSpec, code: str, episodes: bytes, count: int, folder: Path, sandbox: Sandbox,
                  limits: Limits, device: str = "auto", gamma: float = 1.0) -> ScoreReport | str:
    """Score ``count`` stored episodes (an EpisodeBatch file) with reward ``code`` in a sandbox
    (``guest score``): each episode's return. No env is stepped. Returns why not, if it failed."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / REWARD_FILE).write_text(code)
    (folder / EPISODES_FILE).write_bytes(episodes)
    limits = replace(limits, timeout_s=min(limits.timeout_s, CHECK_TIMEOUT_S), threads=1)
    reply = run_guest(sandbox, folder, score_job(task, code, gamma=gamma, device=device), limits,
                      folder / "score.log")
    return read_score(reply, count)


def record_random_episodes(task: TaskSpec, folder: Path, sandbox: Sandbox, limits: Limits, device: str,
                           holds: list[int], episodes: int, seed: int) -> EpisodeBatch | str:
    """Episodes of random policies (each action held ``holds[i]`` steps, ``episodes`` each) from a
    clean evaluation job: the first iteration's stored episodes, when no policy exists yet."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    job = evaluation_job(task, device, 1, seed, RecordSpec(random_holds=holds, random_episodes=episodes))
    (folder / GO_FILE).write_text("evaluate")  # no policy to wait for (a warm pool waits for go on the host)
    reply = run_guest(sandbox, folder, job, replace(limits, threads=1), folder / "eval.log")
    if reply.failure or reply.result is None or "error" in reply.result:
        return reply.failure or str((reply.result or {}).get("error", "the job printed no result"))[:500]
    return read_episodes(folder / EPISODES_FILE, task)


# --------------------------------------------------------------------------------- evaluate

def evaluation_job(task: TaskSpec, device: str, threads: int, seed: int | None = None,
                   record: RecordSpec | None = None) -> WorkerJob:
    extra = {} if seed is None else {"eval_seed": seed}
    return WorkerJob(kind="evaluate", task=task.model_dump(mode="json"), device=device, threads=threads,
                     record=record, **extra)


def evaluate_policy_file(task: TaskSpec, policy: Path, folder: Path, sandbox: Sandbox, limits: Limits,
                         device: str, seed: int) -> EvalSummary | str:
    """Score a saved policy on evaluation seed ``seed`` in a fresh folder (no reward code)."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    shutil.copyfile(policy, folder / POLICY_FILE)
    (folder / GO_FILE).write_text("evaluate")  # the policy is there from the start: no wait
    reply = run_guest(sandbox, folder, evaluation_job(task, device, limits.threads, seed), limits, folder / "eval.log")
    return reply.record(EvalSummary, "evaluation")


class PendingJob:
    """A guest job started ahead, so that its start-up (a Python process importing torch,
    building the env; a container) overlaps what comes before it. It waits in its sandbox for
    the host's ``go`` file, written once its inputs are in place; the host cancels it by removing
    its job file. Its own folder: no other job sees it."""

    def __init__(self, sandbox: Sandbox, folder: Path, job: WorkerJob, limits: Limits,
                 files: dict[str, str] | None = None):
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        for name, text in (files or {}).items():
            (folder / name).write_text(text)
        write_job(folder, job)
        self.folder, self.limits, self.sandbox, self.job = folder, limits, sandbox, job
        self.started = False
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix=job.kind)
        self._result = self._pool.submit(sandbox.run_worker, job.kind, folder, limits)

    def go(self, inputs: dict[str, bytes]) -> None:
        """Put ``inputs`` into its folder and let it go on."""
        for name, data in inputs.items():
            (self.folder / name).write_bytes(data)
        atomic_write_text(self.folder / GO_FILE, self.job.kind)
        self.started = True

    def reply(self, log: Path) -> GuestReply:
        return read_reply(self._result.result(), self.limits, log, self.sandbox, self.job)

    def close(self) -> None:
        """Cancel it if it never got its inputs, and wait until its sandbox has ended. Cancelling
        removes its job file, which needs no disk space (the disk may be why we stop)."""
        if not self.started:
            (self.folder / JOB_FILE).unlink(missing_ok=True)
        self._pool.shutdown(wait=True)


class PendingEvaluation(PendingJob):
    """The clean evaluation job of a candidate, started while the candidate trains; it goes on
    once the training job's checked policy is in place."""

    def __init__(self, sandbox: Sandbox, folder: Path, job: WorkerJob, limits: Limits):
        super().__init__(sandbox, folder, job, limits)
        self.policy: bytes | None = None  # the checkpoint it evaluates, once handed over

    def start(self, work: Path) -> bytes | None:
        """Hand over the training job's checkpoint, if it left a readable one (a regular file,
        capped; copied once, so later changes to it do not count). Returns what was handed over."""
        if self.policy is None:
            policy = read_untrusted(work / POLICY_FILE, MAX_POLICY_BYTES)
            if policy is not None:
                self.go({POLICY_FILE: policy})
                self.policy = policy
        return self.policy


# ------------------------------------------------------------------------------------ train

def _progress_listener(on_progress: ProgressFn | None) -> Callable[[str], None] | None:
    if on_progress is None:
        return None

    def listen(line: str) -> None:
        if line.startswith(PROGRESS):
            try:
                payload = json.loads(line[len(PROGRESS):])
            except ValueError:
                return
            if isinstance(payload, dict):
                on_progress(payload)

    return listen


class VideoInfo(BaseModel):
    """The timing of the video's episode, as the evaluation job wrote it (``video.json``)."""

    frame_steps: list[int]
    fps: float
    dt: float | None = None
    terminated: bool


def collect_video(evaluated: Path, dest: Path, task: TaskSpec, score: PendingJob | None) -> str | None:
    """The video of the episode the clean evaluation job recorded, and beside it the reward's
    numbers at each of its steps from the candidate's ``score`` job: ``rollout.json``, the mp4
    and the gif in ``dest``. Returns why there is no video, or ``None``."""
    try:
        video = read_episodes(evaluated / VIDEO_FILE, task, MAX_TRACE_BYTES)
        if isinstance(video, str):
            return f"the evaluation recorded no episode for the video ({video})"
        raw = read_untrusted(evaluated / VIDEO_INFO_FILE, 64 * 1024)
        info = VideoInfo.model_validate_json(raw or b"")
        frames = load_frames(read_untrusted(evaluated / FRAMES_FILE, MAX_FRAMES_BYTES) or b"")
        if len(frames) != len(info.frame_steps):
            return f"{len(frames)} frames for {len(info.frame_steps)} frame steps"
        if score is not None:  # the reward scores the episode while the host encodes its videos
            score.go({EPISODES_FILE: video.to_bytes()})
        encode_videos(frames, min(60.0, max(1.0, info.fps)), dest)
        if score is None:
            return None
        scored = read_score(score.reply(dest / "score.log"), 1)
        per_step = read_step_scores(score.folder / SCORES_FILE, video.steps) if not isinstance(scored, str) \
            else scored
        if isinstance(per_step, str):
            return f"video kept, but the reward could not be scored on its episode: {per_step}"
        reward, components = per_step
        atomic_write_text(dest / TRACE_FILE, _trace(video, info, reward, components, task).model_dump_json() + "\n")
        return None
    except (ValidationError, ValueError, OSError) as exc:
        return f"the recorded episode is unusable: {type(exc).__name__}: {str(exc)[:200]}"
    finally:
        (evaluated / FRAMES_FILE).unlink(missing_ok=True)


def _trace(video: EpisodeBatch, info: VideoInfo, reward: list[float], components: dict[str, list[float]],
           task: TaskSpec) -> RolloutTrace:
    scalar = [v.name for v in task.env.describe().variables if v.shape == ()]
    steps = video.steps
    return RolloutTrace(steps=steps, dt=info.dt, fps=info.fps, frame_steps=info.frame_steps, reward=reward,
                        components=components,
                        variables={k: video.variables[k].astype(float).reshape(-1).tolist() for k in scalar
                                   if k in video.variables},
                        action=video.action.astype(float).reshape(steps, -1).tolist(), terminated=info.terminated,
                        episode_return=float(sum(reward)))


def train_and_evaluate(job: CandidateJob, sandbox: Sandbox, threads: int = 1) -> JobOutcome:
    """Train with the reward code in one sandbox, then evaluate the policy in a fresh one without
    it. The sandboxes' job folders (``work/``, ``eval/``) are scratch, removed afterwards: the
    host has copied out what it keeps (policy, logs, rollout), and nothing else the reward wrote
    stays on disk."""
    try:
        return _train_then_evaluate(job, sandbox, threads)
    finally:
        for scratch in SCRATCH:
            shutil.rmtree(job.folder / scratch, ignore_errors=True)


def _train_then_evaluate(job: CandidateJob, sandbox: Sandbox, threads: int) -> JobOutcome:
    start = time.perf_counter()
    limits = replace(job.limits, threads=threads)

    form: dict[str, Any] = {}  # how the reward ran, once the training job has said

    def done(status: Status, reason: str | None, train: TrainLog | None = None,
             ev: EvalSummary | None = None) -> JobOutcome:
        return JobOutcome(status, reason, train, ev, time.perf_counter() - start, sandbox.name, **form)

    work = job.folder / "work"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    (work / REWARD_FILE).write_text(job.reward_code)
    task_data = job.task.model_dump(mode="json")
    initial = read_untrusted(job.init_policy, MAX_POLICY_BYTES) if job.init_policy is not None else None
    if initial is not None:
        (work / INIT_POLICY_FILE).write_bytes(initial)
    reuse = _experience_settings(job, work)
    train_job = WorkerJob(kind="train", task=task_data, reward_file=REWARD_FILE, device=job.device, threads=threads,
                          init_policy=INIT_POLICY_FILE if initial is not None else None, **reuse)
    # its time limit covers the wait for the training as well as the evaluation
    evaluation = PendingEvaluation(sandbox, job.folder / "eval",
                                   evaluation_job(job.task, job.device, threads, record=job.record),
                                   replace(limits, timeout_s=2 * limits.timeout_s))
    # the video's reward trace: the reward on the evaluation's recorded episode, in its own sandbox
    score = PendingJob(sandbox, job.folder / "score", score_job(job.task, job.reward_code, per_step=True, wait=True,
                                                               device=job.device),
                       replace(limits, timeout_s=3 * limits.timeout_s, threads=1),
                       files={REWARD_FILE: job.reward_code}) if job.record.video else None
    announced: list[OSError | None] = []  # the job said its policy is saved (and what that gave)
    progress = _progress_listener(job.on_progress)

    def on_line(line: str) -> None:
        # The job says its policy is saved: the evaluation can start now. (Reward code could
        # print this line too; it would only get the policy evaluated that is there at that
        # moment, as it could by rewriting the file.)
        if line.startswith(POLICY_SAVED) and job.exchange is not None:
            job.exchange.finished(job.folder.name)  # its training is over: it needs no more experience
        if line.startswith(POLICY_SAVED) and not announced:
            try:
                evaluation.start(work)
                announced.append(None)
            except OSError as exc:  # raised below, in the host's own thread
                announced.append(exc)
        elif progress is not None:
            progress(line)

    try:
        # ---- training, with the reward code --------------------------------------------------
        if job.exchange is not None:
            job.exchange.join(job.folder.name, work)
        try:
            trained = run_guest(sandbox, work, train_job, limits, job.folder / "train.log", on_line=on_line)
        finally:
            if job.exchange is not None:
                job.exchange.leave(job.folder.name)
        shutil.rmtree(work / "tmp", ignore_errors=True)
        if announced and announced[0] is not None:
            error = announced[0]
            raise DiskFull(f"the disk is full: {error}") if is_disk_full(error) else error
        if trained.failure:
            return done("failed", trained.failure)
        raw = read_untrusted(work / OUTCOME_FILE, MAX_OUTCOME_BYTES)
        if raw is None:
            return done("failed", f"the training job wrote no readable {OUTCOME_FILE}")
        try:
            outcome = WorkerOutcome.model_validate_json(raw)
        except ValidationError:
            return done("failed", f"the training job wrote a malformed {OUTCOME_FILE}")
        form.update(runs_as=outcome.runs_as, torchscript_error=outcome.torchscript_error)
        if outcome.status != "ok":
            return done(outcome.status, explain_blocked(outcome.reason), outcome.log)
        policy = evaluation.start(work)  # unless it started already
        if policy is None:
            return done("failed", "the training job left no policy checkpoint", outcome.log)
        if job.keep_experience:
            _keep_experience(job, work, reuse["experience_max_bytes"])

        # ---- evaluation, without the reward code; it records episodes and the video -----------
        (job.folder / POLICY_FILE).write_bytes(policy)
        evaluated = evaluation.reply(job.folder / "eval.log")
        summary = evaluated.record(EvalSummary, "evaluation")
        if isinstance(summary, str):
            return done("failed", summary, outcome.log)
        _keep_episodes(job, evaluation.folder)
        problem = collect_video(evaluation.folder, job.folder, job.task, score) if job.record.video else None
        if problem:
            with open(job.folder / "eval.log", "a") as log:
                log.write(f"\nno video: {problem}\n")
    finally:
        evaluation.close()
        if score is not None:
            score.close()
    return done("ok", None, outcome.log, summary)


def _keep_episodes(job: CandidateJob, evaluated: Path) -> None:
    """The evaluation's recorded episodes, checked, into the candidate's folder (the loop adds
    them to the run's episode store)."""
    if not (job.record.episodes or job.record.sampled):
        return
    batch = read_episodes(evaluated / EPISODES_FILE, job.task)
    if isinstance(batch, str):
        with open(job.folder / "eval.log", "a") as log:
            log.write(f"\nno episodes kept: {batch}\n")
        return
    atomic_write_bytes(job.folder / EPISODES_FILE, batch.to_bytes(compress=True))


def _experience_settings(job: CandidateJob, work: Path) -> dict[str, Any]:
    """The training job's experience fields; writes the experience it starts from into ``work``
    (a copy: whatever the job does to it stays there)."""
    from ..experience import write

    settings: dict[str, Any] = {}
    max_mb = getattr(job.task.train, "experience_mb", 64.0)
    settings["experience_max_bytes"] = min(int(max_mb * 1024 * 1024), MAX_EXPERIENCE_BYTES)
    if job.experience is not None and job.experience.rows:
        write(work, EXPERIENCE_IN, job.experience)
        settings["experience_in"] = EXPERIENCE_IN
    if job.keep_experience:
        settings["experience_out"] = EXPERIENCE_OUT
    if job.exchange is not None:
        settings["share_every"] = getattr(job.task.train, "share_every", 250)
        settings["share_max_bytes"] = settings["experience_max_bytes"]
    return settings


def _keep_experience(job: CandidateJob, work: Path, max_bytes: int) -> None:
    """Read back the transitions the training job collected (untrusted: its reward ran there),
    check them against the env's description and write the host's copy into the candidate's
    folder; say in ``train.log`` why none was kept."""
    from ..experience import read, write

    found = read(work, EXPERIENCE_OUT, job.task.env.describe(), max_bytes)
    if isinstance(found, str):
        with open(job.folder / "train.log", "a") as log:
            log.write(f"\nexperience not kept for reuse: {found}\n")
        return
    write(job.folder, EXPERIENCE, found)


# ------------------------------------------------------------------------ which sandbox for a task

PROBE_REWARD = '''import torch

def compute_reward(action):
    zero = action.reshape(action.shape[0], -1).sum(-1) * 0.0
    return zero, {}
'''


def _probe_cache() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "rewardsmith" / "sandbox-probes.json"


def cannot_run(sandbox: Sandbox, task: TaskSpec) -> str | None:
    """Why ``sandbox`` cannot build ``task``'s env, or ``None`` if it can. Only an image can lack
    what the host has: for a sandbox with an ``image_id``, a dry run of a trivial reward there
    answers, remembered per image and env."""
    image_id = getattr(sandbox, "image_id", None)
    if image_id is None:
        return None
    key = json.dumps(task.env.model_dump(mode="json"), sort_keys=True)
    cache = _probe_cache()
    try:
        known = json.loads(cache.read_text()) if cache.is_file() else {}
    except ValueError:
        known = {}
    if key in known.get(image_id, {}):
        return known[image_id][key] or None
    import tempfile

    folder = Path(tempfile.mkdtemp(prefix="rewardsmith-probe-"))
    try:
        limits = Limits(timeout_s=CHECK_TIMEOUT_S, memory_mb=max(task.sandbox.memory_mb, 2048))
        report = check_reward(task, PROBE_REWARD, folder, sandbox, limits, "cpu")
        reason = None if report.ok else f"a dry run there failed: {report.reason}"
    except SandboxLacks as exc:
        reason = str(exc)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    known = {image_id: {**known.get(image_id, {}), key: reason or ""}}  # entries of other images are dropped
    cache.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(cache, json.dumps(known))
    return reason


def choose_sandbox(name: str, task: TaskSpec | None = None) -> Sandbox:
    """The sandbox ``name`` names, able to build ``task``'s env. ``auto`` takes Docker only where
    its image can run this task (else bwrap, else the unsafe process backend) and records in
    ``skipped`` why it passed the safer ones over; an explicit ``docker`` whose image cannot run
    the task is a one-line error with the fix."""
    from ..errors import SandboxUnavailable
    from .sandboxes import make_sandbox

    if name != "auto":
        box = make_sandbox(name)
        reason = cannot_run(box, task) if task is not None else None
        if reason:
            raise SandboxUnavailable(reason)
        return box
    skipped = []
    for candidate in ("docker", "bwrap"):
        try:
            box = make_sandbox(candidate)
        except SandboxUnavailable as exc:
            skipped.append(f"{candidate}: {exc}")
            continue
        reason = cannot_run(box, task) if task is not None else None
        if reason is None:
            box.skipped = skipped
            return box
        skipped.append(f"{candidate}: {reason}")
    box = make_sandbox("process")
    box.skipped = skipped
    return box
