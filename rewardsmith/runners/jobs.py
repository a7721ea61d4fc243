"""One candidate as one job: train in a sandbox, then measure fitness in a second, clean sandbox.

The training job runs the reward code and can write anything into its own folder (``work/``);
the host reads back only ``outcome.json`` (size-capped, schema-checked) and ``policy.pt`` (a
regular file, loaded later with ``weights_only``). The evaluation job gets a fresh folder with a
copy of the checkpoint and no reward code; its fitness is the only score that counts.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from ..errors import DiskFull, is_disk_full
from ..runs import atomic_write_text
from ..schemas import CheckReport, EvalSummary, RolloutTrace, Status, TrainLog, WorkerJob, WorkerOutcome
from ..task import TaskSpec
from ..video import FRAMES, TRACE, encode_videos, load_frames
from ..worker import GO, POLICY_SAVED, PROGRESS
from .sandbox import Limits, Sandbox, SandboxResult

MAX_OUTCOME_BYTES = 4 * 1024 * 1024
MAX_POLICY_BYTES = 256 * 1024 * 1024
MAX_LOG_BYTES = 256 * 1024
MAX_TRACE_BYTES = 8 * 1024 * 1024
MAX_FRAMES_BYTES = 96 * 1024 * 1024
CHECK_TIMEOUT_S = 120.0
MAX_SIGNATURE = 4096
ENOSPC_MESSAGE = "No space left on device"
NEARLY_FULL_BYTES = 16 * 1024 * 1024

ProgressFn = Callable[[dict], None]


@dataclass(frozen=True)
class JobSpec:
    task: TaskSpec
    reward_code: str
    job_dir: Path
    limits: Limits
    device: str = "auto"


@dataclass(frozen=True)
class JobOutcome:
    status: Status
    reason: str | None
    train: TrainLog | None
    eval: EvalSummary | None
    wall_s: float
    sandbox: str


def read_untrusted(path: Path, max_bytes: int) -> bytes | None:
    """Read a file a sandbox wrote: a regular file only (no symlink, FIFO or device), capped."""
    try:  # O_NONBLOCK: opening a FIFO planted by the job must not hang the host
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK)
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


def _write_job(folder: Path, job: WorkerJob) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "job.json").write_text(job.model_dump_json(indent=1))


class PendingEvaluation:
    """The clean evaluation job of a candidate, started while the candidate trains so that its
    start-up (a Python process importing torch, building the env; a container) overlaps the
    training. It waits in its sandbox for the host's ``GO`` file, written once the checked policy
    is in place; the host cancels it by removing its job file. Its own folder: the training job
    never sees it."""

    def __init__(self, sandbox: Sandbox, folder: Path, job: WorkerJob, limits: Limits):
        if folder.exists():
            shutil.rmtree(folder)
        _write_job(folder, job)
        self.folder, self.limits = folder, limits
        self.policy: bytes | None = None  # the checkpoint it evaluates, once handed over
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="evaluation")
        self._result = self._pool.submit(sandbox.run_worker, "evaluate", folder, limits)

    def start(self, work: Path) -> bytes | None:
        """Hand over the training job's checkpoint, if it left a readable one (a regular file,
        capped; copied once, so later changes to it do not count). Returns what was handed over."""
        if self.policy is None:
            policy = read_untrusted(work / "policy.pt", MAX_POLICY_BYTES)
            if policy is not None:
                (self.folder / "policy.pt").write_bytes(policy)
                atomic_write_text(self.folder / GO, "evaluate")
                self.policy = policy
        return self.policy

    def result(self) -> SandboxResult:
        return self._result.result()

    def close(self) -> None:
        """Cancel it if it never got the policy, and wait until its sandbox has ended. Cancelling
        removes its job file, which needs no disk space (the disk may be why we stop)."""
        if self.policy is None:
            (self.folder / "job.json").unlink(missing_ok=True)
        self._pool.shutdown(wait=True)


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


def collect_rollout(work: Path, dest: Path) -> str | None:
    """Check the episode the training job recorded; write ``rollout.json`` and the videos into ``dest``.

    Returns why there is no video, or ``None``.
    """
    try:
        raw = read_untrusted(work / TRACE, MAX_TRACE_BYTES)
        if raw is None:
            return "the training job recorded no episode (see above)"
        trace = RolloutTrace.model_validate_json(raw)
        frames = load_frames(read_untrusted(work / FRAMES, MAX_FRAMES_BYTES) or b"")
        if len(frames) != len(trace.frame_steps):
            return f"{len(frames)} frames for {len(trace.frame_steps)} frame steps"
        atomic_write_text(dest / TRACE, trace.model_dump_json() + "\n")
        encode_videos(frames, min(60.0, max(1.0, trace.fps)), dest)
        return None
    except (ValidationError, ValueError, OSError) as exc:
        return f"the recorded episode is unusable: {type(exc).__name__}: {str(exc)[:200]}"
    finally:
        (work / FRAMES).unlink(missing_ok=True)


def train_and_evaluate(spec: JobSpec, sandbox: Sandbox, on_progress: ProgressFn | None = None,
                       threads: int = 1) -> JobOutcome:
    """Train with the reward code in one sandbox, then evaluate the policy in a fresh one without
    it. The sandboxes' job folders (``work/``, ``eval/``) are scratch, removed afterwards: the
    host has copied out what it keeps (policy, logs, rollout), and nothing else the reward wrote
    stays on disk."""
    try:
        return _train_then_evaluate(spec, sandbox, on_progress, threads)
    finally:
        for scratch in ("work", "eval"):
            shutil.rmtree(spec.job_dir / scratch, ignore_errors=True)


def _train_then_evaluate(spec: JobSpec, sandbox: Sandbox, on_progress: ProgressFn | None,
                         threads: int) -> JobOutcome:
    start = time.perf_counter()
    limits = Limits(**{**spec.limits.__dict__, "threads": threads})
    task_data = spec.task.model_dump(mode="json")

    def done(status: Status, reason: str | None, train: TrainLog | None = None,
             ev: EvalSummary | None = None) -> JobOutcome:
        return JobOutcome(status, reason, train, ev, time.perf_counter() - start, sandbox.name)

    work = spec.job_dir / "work"
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    (work / "reward.py").write_text(spec.reward_code)
    _write_job(work, WorkerJob(kind="train", task=task_data, reward_file="reward.py",
                               device=spec.device, threads=threads))
    # its time limit covers the wait for the training as well as the evaluation
    evaluation = PendingEvaluation(sandbox, spec.job_dir / "eval",
                                   WorkerJob(kind="evaluate", task=task_data, device=spec.device, threads=threads),
                                   Limits(**{**limits.__dict__, "timeout_s": 2 * limits.timeout_s}))
    announced: list[OSError | None] = []  # the job said its policy is saved (and what that gave)
    progress = _progress_listener(on_progress)

    def on_line(line: str) -> None:
        # The job says its policy is saved and goes on to record an episode for the video: the
        # evaluation can start now. (Reward code could print this line too; it would only get
        # the policy evaluated that is there at that moment, as it could by rewriting the file.)
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
        result = sandbox.run_worker("train", work, limits, on_line=on_line)
        save_job_log(spec.job_dir / "train.log", result)
        shutil.rmtree(work / "tmp", ignore_errors=True)
        if announced and announced[0] is not None:
            error = announced[0]
            raise DiskFull(f"the disk is full: {error}") if is_disk_full(error) else error
        failure = result.failure_reason(limits)
        if failure:
            return done("failed", failure)
        raw = read_untrusted(work / "outcome.json", MAX_OUTCOME_BYTES)
        if raw is None:
            return done("failed", "the training job wrote no readable outcome.json")
        try:
            outcome = WorkerOutcome.model_validate_json(raw)
        except ValidationError:
            return done("failed", "the training job wrote a malformed outcome.json")
        if outcome.status != "ok":
            return done(outcome.status, explain_blocked(outcome.reason), outcome.log)
        policy = evaluation.start(work)  # unless it started already
        if policy is None:
            return done("failed", "the training job left no policy checkpoint", outcome.log)

        # ---- evaluation, without the reward code (the video is encoded meanwhile) ----------------
        (spec.job_dir / "policy.pt").write_bytes(policy)
        problem = collect_rollout(work, spec.job_dir)
        if problem:
            with open(spec.job_dir / "train.log", "a") as log:
                log.write(f"\nno video: {problem}\n")
        result = evaluation.result()
    finally:
        evaluation.close()
    save_job_log(spec.job_dir / "eval.log", result)
    failure = result.failure_reason(evaluation.limits)
    if failure:
        return done("failed", f"evaluation {failure}", outcome.log)
    try:
        payload = json.loads(result.result_line or "")
    except ValueError:
        return done("failed", "evaluation printed no result", outcome.log)
    if "error" in payload:
        return done("failed", str(payload["error"])[:500], outcome.log)
    summary = EvalSummary.model_validate(payload)
    return done("ok", None, outcome.log, summary)


def check_reward(task: TaskSpec, code: str, folder: Path, sandbox: Sandbox, limits: Limits,
                 device: str = "auto") -> CheckReport:
    """Dry-run reward code in a sandbox on states of a short random rollout (``worker check``).

    The report is untrusted (the reward ran in that process): it is schema-checked and bounded,
    and it only decides whether a candidate is trained and whether it duplicates another.
    """
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "reward.py").write_text(code)
    _write_job(folder, WorkerJob(kind="check", task=task.model_dump(mode="json"), reward_file="reward.py",
                                 device=device, threads=1))
    limits = Limits(**{**limits.__dict__, "timeout_s": min(limits.timeout_s, CHECK_TIMEOUT_S), "threads": 1})
    result = sandbox.run_worker("check", folder, limits)
    save_job_log(folder / "check.log", result)
    failure = result.failure_reason(limits)
    if failure:
        return CheckReport(ok=False, reason=f"the dry run failed: {failure}")
    try:
        report = CheckReport.model_validate_json(result.result_line or "")
    except (ValidationError, ValueError):
        return CheckReport(ok=False, reason="the dry run printed no result")
    return report.model_copy(update={"signature": report.signature[:MAX_SIGNATURE],
                                     "components": report.components[:64]})
