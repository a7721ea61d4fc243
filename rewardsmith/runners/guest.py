"""The guest: the process that runs inside a sandbox, ``python -I -m rewardsmith.runners.guest KIND JOB_DIR``.

- ``check``: load the reward and call it on a batch of real states (a dry run).
- ``check``: with ``episodes_file``, also the reward's return on each of those stored episodes
  (trajectory screening).
- ``train``: dry run, then PPO; writes ``policy.pt`` and ``outcome.json`` into the job folder.
- ``evaluate``: load a policy checkpoint and measure the task's fitness. This process never
  loads reward code, so its result (the last ``@@result`` line on stdout) can be trusted. With
  ``record``, it also keeps its episodes' states and actions (``episodes.npz``) and plays one
  more episode for the video (``video.npz``, ``video.json``, ``frames.npy``); with
  ``record.random_holds`` and no policy, it plays random policies instead.
- ``score``: load a reward and score stored episodes (``episodes_file``): each episode's return,
  and with ``per_step`` every step's reward and components (``scores.npz``).

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

from .protocol import (
    ENV_ERROR,
    EPISODES_FILE,
    FRAMES_FILE,
    GO_FILE,
    JOB_FILE,
    KINDS,
    OUTCOME_FILE,
    POLICY_SAVED,
    PROGRESS,
    RESULT,
    REWARD_LOADING,
    SCORES_FILE,
    VIDEO_FILE,
    VIDEO_INFO_FILE,
)

DRY_RUN_ENVS = 16
DRY_RUN_STEPS = 32
SCORE_CHUNK = 8192  # steps of stored episodes scored in one call of the reward


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
        record = job.record
        if record is not None and record.random_holds:
            setup.envs["random"] = task.env.make(record.random_episodes, device, seed=job.eval_seed)
        else:
            setup.envs["eval"] = task.env.make(task.fitness.eval_episodes, device, seed=job.eval_seed)
            if record is not None and record.sampled:  # as many envs as episodes kept (MuJoCo steps cost)
                setup.envs["sampled"] = task.env.make(record.sampled, device, seed=job.eval_seed + 1)
        if record is not None and record.video and not _video_in_evaluation(task):
            from ..train.rollout import make_render_env

            setup.envs["video"] = make_render_env(task, device)
    return setup


def _video_in_evaluation(task) -> bool:
    """Whether the video is of the evaluation's first episode, recorded as it plays (a torch
    env draws any of its envs), rather than of an episode played in an env of its own."""
    return task.env.backend == "torch"


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


def check(task, path: Path, device: str, env=None, episodes=None):
    """Load the reward in ``path`` and dry-run it on ``task`` (on ``env``, else a fresh dry-run env):
    the check job's :class:`CheckReport`; with ``episodes`` (an EpisodeBatch), also the reward's
    return on each of them."""
    from ..errors import RewardCodeError
    from ..reward import RewardFunction
    from ..schemas import CheckReport

    env = env if env is not None else task.env.make(DRY_RUN_ENVS, device, seed=12345)
    try:
        announce_reward()
        reward = RewardFunction.from_file(path, task.env.describe().reward_arguments)
        names, signature = dry_run(env, reward, device)
        returns: list[float] = []
        if episodes is not None:
            returns = score_episodes(reward, episodes, device)[1].tolist()
        return CheckReport(ok=True, components=names, signature=signature, returns=returns, **_form(reward))
    except RewardCodeError as exc:
        return CheckReport(ok=False, reason=str(exc))
    except Exception as exc:  # the reward raised: report it like a user error
        return CheckReport(ok=False, reason=_exception_reason(exc))


def run_check(job_dir: Path, setup: Setup) -> int:
    episodes = _episodes(job_dir, setup) if setup.job.episodes_file else None
    report = check(setup.task, job_dir / setup.job.reward_file, setup.device, setup.envs["dry_run"], episodes)
    emit(RESULT, report.model_dump())
    return 0


def _episodes(job_dir: Path, setup: Setup):
    """The stored episodes the host put into the job folder (read before any reward code runs)."""
    from ..episodes import EpisodeBatch, variable_shapes

    raw = (job_dir / setup.job.episodes_file).read_bytes()
    return EpisodeBatch.from_bytes(raw, variable_shapes(setup.description))


def score_steps(reward, batch, device: str):
    """The reward at every step of ``batch`` (an EpisodeBatch): total and components as float64
    arrays of ``batch.steps``. A reward is a function of the state after a step and its action,
    so the steps are scored in large batches, whatever episode they belong to."""
    import numpy as np
    import torch

    from ..reward import check_finite

    totals: list = []
    parts: dict[str, list] = {}
    for lo in range(0, batch.steps, SCORE_CHUNK):
        hi = min(batch.steps, lo + SCORE_CHUNK)
        variables = {k: torch.as_tensor(v[lo:hi], device=device) for k, v in batch.variables.items()}
        action = torch.as_tensor(batch.action[lo:hi], device=device)
        total, components = reward.checked_call(variables, action, hi - lo)
        check_finite(total, components)
        totals.append(total.detach().double().cpu().numpy())
        for name, value in components.items():
            parts.setdefault(name, []).append(value.detach().double().cpu().numpy())
    empty = np.zeros(0)
    return (np.concatenate(totals) if totals else empty,
            {k: np.concatenate(v) for k, v in parts.items()})


def score_episodes(reward, batch, device: str, gamma: float = 1.0):
    """Each episode's discounted return (``gamma``) and undiscounted sum of the reward, and the
    per-step arrays they come from."""
    import numpy as np

    total, parts = score_steps(reward, batch, device)
    offsets = batch.offsets
    sums = np.add.reduceat(total, offsets[:-1]) if len(total) else np.zeros(len(batch))
    if gamma == 1.0:
        returns = sums
    else:
        t = np.arange(batch.steps) - np.repeat(offsets[:-1], batch.lengths)
        returns = np.add.reduceat(total * gamma ** t, offsets[:-1])
    return returns, sums, total, parts


def run_score(job_dir: Path, setup: Setup) -> int:
    """Score stored episodes with the candidate's reward (no env steps)."""
    import numpy as np

    from ..errors import RewardCodeError
    from ..schemas import ScoreReport

    job = setup.job
    try:
        reward = load_reward(setup, job_dir)
    except Exception as exc:
        emit(RESULT, {"error": f"the reward does not load: {_exception_reason(exc)}"})
        return 0
    if job.wait and not _wait_for_go(job_dir):
        emit(RESULT, {"error": "cancelled: no episodes to score"})
        return 0
    try:
        batch = _episodes(job_dir, setup)
        returns, sums, total, parts = score_episodes(reward, batch, setup.device, job.gamma)
    except RewardCodeError as exc:
        emit(RESULT, {"error": str(exc)})
        return 0
    except Exception as exc:
        emit(RESULT, {"error": _exception_reason(exc)})
        return 0
    if job.per_step:
        with open(job_dir / SCORES_FILE, "wb") as f:
            np.savez(f, reward=total, **{f"comp:{k}": v for k, v in parts.items()})
    emit(RESULT, ScoreReport(returns=returns.tolist(), totals=sums.tolist(), components=list(parts),
                             steps=batch.steps).model_dump())
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
    from ..train import train
    from ..train.evaluate import evaluate_policy
    from ..train.policy import save_policy

    job, task, device, desc = setup.job, setup.task, setup.device, setup.description
    outcome_path = job_dir / OUTCOME_FILE

    def finish(outcome: WorkerOutcome) -> int:
        outcome_path.write_text(outcome.model_dump_json())
        emit(RESULT, {"status": outcome.status, "reason": outcome.reason})
        return 0

    experience = _reused_experience(job_dir, setup)  # read before any reward code runs
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
    initial = None
    if job.init_policy and task.train.algorithm == "ppo":  # warm start; one that does not fit: from scratch
        from ..train.policy import load_policy

        try:
            initial = load_policy(job_dir / job.init_policy, env.obs_dim, desc.action, task.train, device)
        except Exception as exc:
            print(f"warm start skipped: the policy to start from does not load: {type(exc).__name__}: {exc}",
                  flush=True)
    threshold = task.fitness.success_threshold

    def progress(checkpoint, total):
        emit(PROGRESS, {"step": checkpoint.step, "total": total, "fitness": checkpoint.fitness,
                        "eval_fitness": checkpoint.eval_fitness})

    try:
        sac = {"experience": experience, "keep_experience": job.experience_out is not None,
               "share": _shared_folder(job_dir, setup)} \
            if task.train.algorithm == "sac" else {"initial": initial} if initial is not None else {}
        out = train(env, lambda v, a: reward.checked_call(v, a, env.num_envs), task.train, program,
                    evaluate=lambda p: evaluate_policy(p, eval_env, program, threshold, variables=False).fitness,
                    success_threshold=threshold, on_checkpoint=progress, **sac)
    except RewardCodeError as exc:
        return finish(WorkerOutcome(status="failed", reason=str(exc), **form()))
    except Exception as exc:
        return finish(WorkerOutcome(status="failed", reason=_exception_reason(exc), **form()))
    save_policy(out.policy, job_dir / job.policy_file)
    emit(POLICY_SAVED, {})
    if out.log.reused_transitions or out.log.shared_transitions:
        print(f"SAC started from {out.log.reused_transitions} transitions of earlier candidates and received "
              f"{out.log.shared_transitions} from the candidates training beside it, relabelled with this reward: "
              f"{out.log.reused_share:.1%} of the transitions its updates sampled", flush=True)
    if out.experience is not None and job.experience_out is not None:
        from ..experience import write

        collected = out.experience.to_transitions(desc)
        write(job_dir, job.experience_out, collected.newest(job.experience_max_bytes // max(1, 4 * collected.index.width)))
    return finish(WorkerOutcome(status="ok", log=out.log, **form()))


def _shared_folder(job_dir: Path, setup: Setup):
    """Live sharing with the candidates training at the same time, when the host asked for it."""
    if setup.job.share_every is None:
        return None
    from .sharing import SharedFolder

    return SharedFolder(job_dir, setup.description, setup.device, setup.job.share_every, setup.job.share_max_bytes,
                        obs_dim=setup.envs["train"].obs_dim)


def _reused_experience(job_dir: Path, setup: Setup):
    """The transitions of earlier candidates the host handed in (as a SAC ``Experience``), or
    ``None``; unusable ones are said and left out (training goes on without them)."""
    job = setup.job
    if job.experience_in is None:
        return None
    from ..experience import read
    from ..train.sac import Experience

    found = read(job_dir, job.experience_in, setup.description, job.experience_max_bytes)
    obs_dim = setup.envs["train"].obs_dim
    if isinstance(found, str) or found.index.columns[0].shape != (obs_dim,):
        why = found if isinstance(found, str) else f"observations of {found.index.columns[0].shape}, not ({obs_dim},)"
        print(f"reused experience left out: {why}", flush=True)
        return None
    return Experience.from_transitions(found, setup.description, setup.device)


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
    from ..train.record import EpisodeRecorder
    from ..train.rollout import VideoRecorder

    job, task, device, desc = setup.job, setup.task, setup.device, setup.description
    program = FitnessProgram(task.fitness.expression, set(desc.variable_names))
    record = job.record
    if record is not None and record.random_holds:
        return _random_episodes(job_dir, setup, program)
    env = setup.envs["eval"]
    if not _wait_for_go(job_dir):
        emit(RESULT, {"error": "cancelled: the training did not produce a policy"})
        return 0
    try:
        policy = load_policy(job_dir / job.policy_file, env.obs_dim, desc.action, task.train, device)
    except Exception as exc:
        emit(RESULT, {"error": f"could not load the policy checkpoint: {type(exc).__name__}: {exc}"})
        return 0
    recorder = EpisodeRecorder(record.episodes) if record is not None and record.episodes else None
    video = VideoRecorder(env) if record is not None and record.video and _video_in_evaluation(task) else None
    recorders = [r for r in (recorder, video) if r is not None]

    def on_step(step, active) -> None:
        for r in recorders:
            r(step, active)

    fitness: list = []
    try:
        summary = evaluate_policy(policy, env, program, task.fitness.success_threshold,
                                  on_step=on_step if recorders else None, fitness_out=fitness,
                                  on_reset=video.start if video is not None else None)
    except FitnessNotFinite as exc:
        emit(RESULT, {"error": str(exc)})
        return 0
    if record is not None:
        try:  # what is recorded besides the fitness is a nicety: the evaluation stands without it
            _record_more(job_dir, setup, policy, program, recorder, fitness[0], video)
        except Exception as exc:
            print(f"episodes not recorded: {_exception_reason(exc)}", flush=True)
    emit(RESULT, summary.model_dump())
    return 0


def _record_more(job_dir: Path, setup: Setup, policy, program, recorder, fitness, video) -> None:
    """The evaluation's own episodes, more with sampled actions, and the video's episode
    (``video``: recorded during the evaluation; else played now)."""
    import numpy as np

    from ..episodes import EpisodeBatch
    from ..train.evaluate import evaluate_policy
    from ..train.record import EpisodeRecorder
    from ..train.rollout import play_video_episode

    record = setup.job.record
    batches = [recorder.batch(fitness, "eval")] if recorder is not None else []
    if record.sampled:
        sampled, fit = EpisodeRecorder(record.sampled), list[Any]()
        evaluate_policy(policy, setup.envs["sampled"], program, setup.task.fitness.success_threshold,
                        deterministic=False, variables=False, on_step=sampled, fitness_out=fit)
        batches.append(sampled.batch(fit[0], "train"))
    batches = [b for b in batches if b is not None]
    if batches:
        (job_dir / EPISODES_FILE).write_bytes(EpisodeBatch.concat(batches).to_bytes())
    if record.video:
        played = video.video(float(fitness[0])) if video is not None else \
            play_video_episode(policy, setup.envs["video"], program)
        (job_dir / VIDEO_FILE).write_bytes(played.episode.to_bytes())
        np.save(job_dir / FRAMES_FILE, played.frames, allow_pickle=False)
        (job_dir / VIDEO_INFO_FILE).write_text(json.dumps(played.info()))


def _random_episodes(job_dir: Path, setup: Setup, program) -> int:
    """No policy yet (the first iteration): random policies' episodes, one batch per hold."""
    from ..episodes import EpisodeBatch
    from ..train.evaluate import FitnessNotFinite, evaluate_policy
    from ..train.record import EpisodeRecorder, RandomPolicy

    job, env = setup.job, setup.envs["random"]
    batches = []
    try:
        for i, hold in enumerate(job.record.random_holds):
            recorder, fit = EpisodeRecorder(env.num_envs), list[Any]()
            evaluate_policy(RandomPolicy(env, hold, seed=job.eval_seed + i), env, program,
                            setup.task.fitness.success_threshold, variables=False, on_step=recorder,
                            fitness_out=fit)
            batch = recorder.batch(fit[0], "random", hold=hold)
            if batch is not None:
                batches.append(batch)
    except FitnessNotFinite as exc:
        emit(RESULT, {"error": str(exc)})
        return 0
    if not batches:
        emit(RESULT, {"error": "no episodes recorded"})
        return 0
    batch = EpisodeBatch.concat(batches)
    (job_dir / EPISODES_FILE).write_bytes(batch.to_bytes())
    emit(RESULT, {"episodes": len(batch), "steps": batch.steps})
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
        print(f"usage: python -m rewardsmith.runners.guest {{{','.join(KINDS)}}} JOB_DIR", file=sys.stderr)
        return 2
    os.environ.setdefault("MUJOCO_GL", "osmesa")
    kind, job_dir = argv[0], Path(argv[1])
    _import_isaacgym_first(job_dir)
    try:
        setup = _setup(job_dir, kind)
    except Exception as exc:  # before any reward code ran: the sandbox lacks something the env needs
        emit(ENV_ERROR, {"error": f"{type(exc).__name__}: {exc}"[:1000]})
        return 0
    runner = {"check": run_check, "train": run_train, "evaluate": run_evaluate, "score": run_score}[kind]
    return runner(job_dir, setup)


def exit_now(code: int) -> None:
    """Leave without the interpreter's shutdown: with torch loaded it takes ~0.8 s, paid twice
    per candidate. Every file the job writes is closed by then; only the streams need a flush."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


if __name__ == "__main__":
    exit_now(main())
