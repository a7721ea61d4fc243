"""The guest: the process that runs inside a sandbox, ``python -I -m rewardsmith.runners.guest KIND JOB_DIR``.

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
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .protocol import ENV_ERROR, GO_FILE, JOB_FILE, KINDS, OUTCOME_FILE, POLICY_SAVED, PROGRESS, RESULT, REWARD_LOADING

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


@dataclass
class Setup:
    """What a job needs, made before any reward code runs: the job, its task, the device, the
    env's description and the envs. A failure here is the sandbox's (a package or library
    missing there), never the reward's, and is reported as such."""

    job: Any
    task: Any
    device: str
    description: Any
    envs: dict[str, Any] = field(default_factory=dict)


def _setup(job_dir: Path, kind: str) -> Setup:
    import torch

    from ..schemas import WorkerJob
    from ..task import TaskSpec

    job = WorkerJob.model_validate_json((job_dir / JOB_FILE).read_text())
    task = TaskSpec.model_validate(job.task)
    torch.set_num_threads(threads_for(task.env.num_envs, job.threads))
    device = resolve_device(job.device)
    setup = Setup(job, task, device, task.env.describe())
    if kind in ("check", "train"):
        setup.envs["dry_run"] = task.env.make(DRY_RUN_ENVS, device, seed=12345)
    if kind == "train":
        setup.envs["train"] = task.env.make(task.env.num_envs, device, seed=task.train.seed)
        setup.envs["eval"] = task.env.make(task.fitness.eval_episodes, device, seed=task.train.seed + 7919)
    if kind == "evaluate":
        setup.envs["eval"] = task.env.make(task.fitness.eval_episodes, device, seed=job.eval_seed)
    return setup


def announce_reward() -> None:
    """Say that the reward's code runs from now on: the host trusts nothing printed after this."""
    sys.stdout.write(REWARD_LOADING + "\n")
    sys.stdout.flush()


def load_reward(setup: Setup, job_dir: Path):
    """The candidate's reward, loaded (its module runs): from here on its code may print anything."""
    from ..reward import RewardFunction

    announce_reward()
    return RewardFunction.from_file(job_dir / setup.job.reward_file, setup.description.reward_arguments)


def dry_run(env, reward, device: str) -> tuple[list[str], list[float]]:
    """Call the reward on states from a short random rollout of ``env``; raise RewardCodeError
    on misuse.

    Returns the component names and the total reward on those states (a signature that lets
    the host spot near-duplicate rewards).
    """
    import torch

    from ..reward import check_finite

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


def check(task, path: Path, device: str, env=None):
    """Load the reward in ``path`` and dry-run it on ``task`` (on ``env``, else a fresh dry-run env):
    the check job's :class:`CheckReport`."""
    from ..errors import RewardCodeError
    from ..reward import RewardFunction
    from ..schemas import CheckReport

    env = env if env is not None else task.env.make(DRY_RUN_ENVS, device, seed=12345)
    try:
        announce_reward()
        reward = RewardFunction.from_file(path, task.env.describe().reward_arguments)
        names, signature = dry_run(env, reward, device)
        return CheckReport(ok=True, components=names, signature=signature, **_form(reward))
    except RewardCodeError as exc:
        return CheckReport(ok=False, reason=str(exc))
    except Exception as exc:  # the reward raised: report it like a user error
        return CheckReport(ok=False, reason=_exception_reason(exc))


def run_check(job_dir: Path, setup: Setup) -> int:
    report = check(setup.task, job_dir / setup.job.reward_file, setup.device, setup.envs["dry_run"])
    emit(RESULT, report.model_dump())
    return 0


def _form(reward) -> dict:
    """How the reward ran, for the job's record."""
    return {"runs_as": reward.runs_as, "torchscript_error": reward.torchscript_error}


def _exception_reason(exc: BaseException) -> str:
    """``ValueError: ... (reward.py line 7)``: the exception and where in the reward it happened."""
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if f.filename.endswith("reward.py")]
    where = f" (reward.py line {frames[-1].lineno}: {frames[-1].line})" if frames else ""
    return f"{type(exc).__name__}: {exc}{where}"


def run_train(job_dir: Path, setup: Setup) -> int:
    from ..errors import RewardCodeError
    from ..expressions import FitnessProgram
    from ..schemas import WorkerOutcome
    from ..train.evaluate import evaluate_policy
    from ..train.policy import save_policy
    from ..train.ppo import train
    from ..train.rollout import write_rollout

    job, task, device, desc = setup.job, setup.task, setup.device, setup.description
    outcome_path = job_dir / OUTCOME_FILE

    def finish(outcome: WorkerOutcome) -> int:
        outcome_path.write_text(outcome.model_dump_json())
        emit(RESULT, {"status": outcome.status, "reason": outcome.reason})
        return 0

    try:
        reward = load_reward(setup, job_dir)
        dry_run(setup.envs["dry_run"], reward, device)
    except RewardCodeError as exc:
        return finish(WorkerOutcome(status="rejected", reason=str(exc)))
    except Exception as exc:
        return finish(WorkerOutcome(status="rejected", reason=_exception_reason(exc)))
    form = lambda: _form(reward)  # noqa: E731 - read at the end: TorchScript may give way to Python mid-training

    env, eval_env = setup.envs["train"], setup.envs["eval"]
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
        return finish(WorkerOutcome(status="failed", reason=str(exc), **form()))
    except Exception as exc:
        return finish(WorkerOutcome(status="failed", reason=_exception_reason(exc), **form()))
    save_policy(out.policy, job_dir / job.policy_file)
    emit(POLICY_SAVED, {})
    try:
        write_rollout(out.policy, task, lambda v, a: reward.checked_call(v, a, len(a)), device, job_dir)
    except Exception as exc:  # a video is a nicety: the candidate stands without one
        print(f"rollout not recorded: {_exception_reason(exc)}", flush=True)
    return finish(WorkerOutcome(status="ok", log=out.log, **form()))


def _wait_for_go(job_dir: Path) -> bool:
    """An evaluation job may start before its policy exists (its start-up then overlaps the
    training). The host writes ``go`` when the policy is in place, or removes ``job.json`` to
    cancel; its time limit ends the wait should neither happen."""
    while not (job_dir / GO_FILE).exists():
        if not (job_dir / JOB_FILE).exists():
            return False
        time.sleep(0.02)
    return True


def run_evaluate(job_dir: Path, setup: Setup) -> int:
    from ..expressions import FitnessProgram
    from ..train.evaluate import FitnessNotFinite, evaluate_policy
    from ..train.policy import load_policy

    job, task, device, desc = setup.job, setup.task, setup.device, setup.description
    env = setup.envs["eval"]
    if not _wait_for_go(job_dir):
        emit(RESULT, {"error": "cancelled: the training did not produce a policy"})
        return 0
    try:
        policy = load_policy(job_dir / job.policy_file, env.obs_dim, desc.action, task.train, device)
    except Exception as exc:
        emit(RESULT, {"error": f"could not load the policy checkpoint: {type(exc).__name__}: {exc}"})
        return 0
    program = FitnessProgram(task.fitness.expression, set(desc.variable_names))
    try:
        summary = evaluate_policy(policy, env, program, task.fitness.success_threshold)
    except FitnessNotFinite as exc:
        emit(RESULT, {"error": str(exc)})
        return 0
    emit(RESULT, summary.model_dump())
    return 0


def _import_isaacgym_first(job_dir: Path) -> None:
    """Isaac Gym refuses to load after torch: import it first when the job's task needs it."""
    try:
        env = json.loads((job_dir / JOB_FILE).read_text())["task"]["env"]
    except (OSError, ValueError, KeyError, TypeError):
        return
    if env.get("backend") == "isaacgym" and ":" not in str(env.get("id")):
        try:
            import isaacgym  # noqa: F401
        except ImportError:
            pass  # reported as a user error when the env is built


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in KINDS:
        print("usage: python -m rewardsmith.runners.guest {check,train,evaluate} JOB_DIR", file=sys.stderr)
        return 2
    os.environ.setdefault("MUJOCO_GL", "osmesa")
    kind, job_dir = argv[0], Path(argv[1])
    _import_isaacgym_first(job_dir)
    try:
        setup = _setup(job_dir, kind)
    except Exception as exc:  # before any reward code ran: the sandbox lacks something the env needs
        emit(ENV_ERROR, {"error": f"{type(exc).__name__}: {exc}"[:1000]})
        return 0
    runner = {"check": run_check, "train": run_train, "evaluate": run_evaluate}[kind]
    return runner(job_dir, setup)


def exit_now(code: int) -> None:
    """Leave without the interpreter's shutdown: with torch loaded it takes ~0.8 s, paid twice
    per candidate. Every file the job writes is closed by then; only the streams need a flush."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
