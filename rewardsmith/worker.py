"""The process that runs inside a sandbox: ``python -I -m rewardsmith.worker KIND JOB_DIR``.

- ``check``: load the reward and call it on a batch of real states (a dry run).
- ``train``: dry run, then PPO; writes ``policy.pt`` and ``outcome.json`` into the job folder, and
  one recorded episode of the trained policy (``rollout.json``, ``frames.npy``) for videos.
- ``evaluate``: load a policy checkpoint and measure the task's fitness. This process never
  loads reward code, so its result (the last ``@@result`` line on stdout) can be trusted.

Progress goes to stdout as ``@@progress {json}`` lines.
"""

from __future__ import annotations

import json
import os
import sys
import time
import traceback
from pathlib import Path

PROGRESS = "@@progress "
RESULT = "@@result "
POLICY_SAVED = "@@policy-saved"  # the host may start evaluating while the episode is recorded
GO = "go"  # written by the host when an evaluation job started ahead may load its policy
DRY_RUN_ENVS = 16
DRY_RUN_STEPS = 32


def emit(prefix: str, payload: dict) -> None:
    sys.stdout.write(prefix + json.dumps(payload) + "\n")
    sys.stdout.flush()


def threads_for(num_envs: int, available: int) -> int:
    """Torch threads for a job: small batches run fastest on one thread (threads only add
    synchronisation), large ones use up to their share of the cores."""
    return max(1, min(available, num_envs // 2048))


def resolve_device(device: str) -> str:
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise RuntimeError("--device cuda was asked for, but CUDA is not available here")
    return device


def _setup(job_dir: Path):
    import torch

    from .schemas import WorkerJob
    from .task import TaskSpec

    job = WorkerJob.model_validate_json((job_dir / "job.json").read_text())
    task = TaskSpec.model_validate(job.task)
    torch.set_num_threads(threads_for(task.env.num_envs, job.threads))
    return job, task, resolve_device(job.device)


def dry_run(task, reward, device: str) -> tuple[list[str], list[float]]:
    """Call the reward on states from a short random rollout; raise RewardCodeError on misuse.

    Returns the component names and the total reward on those states (a signature that lets
    the host spot near-duplicate rewards).
    """
    import torch

    from .reward import check_finite

    env = task.env.make(DRY_RUN_ENVS, device, seed=12345)
    gen = torch.Generator(device=device).manual_seed(0)
    totals = []
    spec = env.action_spec
    for _ in range(DRY_RUN_STEPS):
        if spec.kind == "discrete":
            action = torch.randint(0, spec.n, (env.num_envs,), generator=gen, device=device)
        else:
            u = torch.rand(env.num_envs, spec.size, generator=gen, device=device)
            action = env.action_low + u * (env.action_high - env.action_low)
        step = env.step(action)
        total, components = reward.checked_call(step.variables, step.action, env.num_envs)
        check_finite(total, components)
        totals.append(total.detach().double())
    return list(components), torch.cat(totals).cpu().tolist()


def run_check(job_dir: Path) -> int:
    from .errors import RewardCodeError
    from .reward import RewardFunction
    from .schemas import CheckReport

    job, task, device = _setup(job_dir)
    allowed = task.env.describe().reward_arguments
    try:
        reward = RewardFunction.from_file(job_dir / job.reward_file, allowed)
        names, signature = dry_run(task, reward, device)
        report = CheckReport(ok=True, components=names, signature=signature)
    except RewardCodeError as exc:
        report = CheckReport(ok=False, reason=str(exc))
    except Exception as exc:  # the reward raised: report it like a user error
        report = CheckReport(ok=False, reason=_exception_reason(exc))
    emit(RESULT, report.model_dump())
    return 0


def _exception_reason(exc: BaseException) -> str:
    """``ValueError: ... (reward.py line 7)``: the exception and where in the reward it happened."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.endswith("reward.py")]
    where = f" (reward.py line {frames[-1].lineno}: {frames[-1].line})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def run_train(job_dir: Path) -> int:
    from .errors import RewardCodeError
    from .expressions import FitnessProgram
    from .reward import RewardFunction
    from .schemas import WorkerOutcome
    from .train import train
    from .train.evaluate import evaluate_policy
    from .train.policy import save_policy
    from .train.rollout import write_rollout

    job, task, device = _setup(job_dir)
    desc = task.env.describe()
    outcome_path = job_dir / "outcome.json"

    def finish(outcome: WorkerOutcome) -> int:
        outcome_path.write_text(outcome.model_dump_json())
        emit(RESULT, {"status": outcome.status, "reason": outcome.reason})
        return 0

    try:
        reward = RewardFunction.from_file(job_dir / job.reward_file, desc.reward_arguments)
        dry_run(task, reward, device)
    except RewardCodeError as exc:
        return finish(WorkerOutcome(status="rejected", reason=str(exc)))
    except Exception as exc:
        return finish(WorkerOutcome(status="rejected", reason=_exception_reason(exc)))

    env = task.env.make(task.env.num_envs, device, seed=task.train.seed)
    eval_env = task.env.make(task.fitness.eval_episodes, device, seed=task.train.seed + 7919)
    program = FitnessProgram(task.fitness.expression, set(desc.variable_names))
    threshold = task.fitness.success_threshold

    def progress(checkpoint, total):
        emit(PROGRESS, {"step": checkpoint.step, "total": total, "fitness": checkpoint.fitness,
                        "eval_fitness": checkpoint.eval_fitness})

    try:
        out = train(env, lambda v, a: reward.checked_call(v, a, env.num_envs), task.train, program,
                    evaluate=lambda p: evaluate_policy(p, eval_env, program, threshold, variables=False).fitness,
                    success_threshold=threshold, on_checkpoint=progress)
    except RewardCodeError as exc:
        return finish(WorkerOutcome(status="failed", reason=str(exc)))
    except Exception as exc:
        return finish(WorkerOutcome(status="failed", reason=_exception_reason(exc)))
    save_policy(out.policy, job_dir / job.policy_file)
    emit(POLICY_SAVED, {})
    try:
        write_rollout(out.policy, task, lambda v, a: reward.checked_call(v, a, len(a)), device, job_dir)
    except Exception as exc:  # a video is a nicety: the candidate stands without one
        print(f"rollout not recorded: {_exception_reason(exc)}", flush=True)
    return finish(WorkerOutcome(status="ok", log=out.log))


def _wait_for_go(job_dir: Path) -> bool:
    """An evaluation job may start before its policy exists (its start-up then overlaps the
    training). The host writes ``go`` when the policy is in place, or removes ``job.json`` to
    cancel; its time limit ends the wait should neither happen."""
    while not (job_dir / GO).exists():
        if not (job_dir / "job.json").exists():
            return False
        time.sleep(0.02)
    return True


def run_evaluate(job_dir: Path) -> int:
    from .expressions import FitnessProgram
    from .train.evaluate import evaluate_policy
    from .train.policy import load_policy

    job, task, device = _setup(job_dir)
    desc = task.env.describe()
    env = task.env.make(task.fitness.eval_episodes, device, seed=job.eval_seed)
    if not _wait_for_go(job_dir):
        emit(RESULT, {"error": "cancelled: the training did not produce a policy"})
        return 0
    try:
        policy = load_policy(job_dir / job.policy_file, env.obs_dim, desc.action, task.train, device)
    except Exception as exc:
        emit(RESULT, {"error": f"could not load the policy checkpoint: {type(exc).__name__}: {exc}"})
        return 0
    program = FitnessProgram(task.fitness.expression, set(desc.variable_names))
    summary = evaluate_policy(policy, env, program, task.fitness.success_threshold)
    emit(RESULT, summary.model_dump())
    return 0


def _import_isaacgym_first(job_dir: Path) -> None:
    """Isaac Gym refuses to load after torch: import it first when the job's task needs it."""
    try:
        env = json.loads((job_dir / "job.json").read_text())["task"]["env"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    if env.get("backend") == "isaacgym" and ":" not in str(env.get("id")):
        try:
            import isaacgym  # noqa: F401
        except ImportError:
            pass  # reported as a user error when the env is built


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in ("check", "train", "evaluate"):
        print("usage: python -m rewardsmith.worker {check,train,evaluate} JOB_DIR", file=sys.stderr)
        return 2
    os.environ.setdefault("MUJOCO_GL", "osmesa")
    _import_isaacgym_first(Path(argv[1]))
    runner = {"check": run_check, "train": run_train, "evaluate": run_evaluate}[argv[0]]
    return runner(Path(argv[1]))


def exit_now(code: int) -> None:
    """Leave without the interpreter's shutdown: with torch loaded it takes ~0.8 s, paid twice
    per candidate. Every file the job writes is closed by then; only the streams need a flush."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
