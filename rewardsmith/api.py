"""The library API behind both ``import rewardsmith as rs`` and the CLI."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .analyzer import result_of
from .critic import static_check
from .errors import OptionError, RewardsmithError, RunDirError, SolveInterrupted
from .options import SolveOptions, flag
from .runs import RunDir, atomic_write_json, atomic_write_text, check_writable, default_run_path, single_summary
from .schemas import CandidateResult, CheckReport, CriticVerdict, Ranking, Summary
from .task import TaskSpec, load_task
from .tensorboard_log import log_candidate
from .tensorboard_log import warm_up as warm_up_tensorboard


@dataclass(frozen=True)
class SolveResult:
    """What ``solve`` found; ``best_code`` is the best reward's source, if any candidate trained."""

    run_dir: Path
    summary: Summary

    @property
    def best_code(self) -> str | None:
        best = self.summary.best
        return (self.run_dir / best.reward_file).read_text() if best else None

    @property
    def success(self) -> bool:
        return bool(self.summary.best and self.summary.best.success)


def as_task(task: TaskSpec | str | Path) -> TaskSpec:
    return task if isinstance(task, TaskSpec) else load_task(task)


# flags that set a task field, and the field
TASK_FLAGS = {"iterations": "search.iterations", "samples": "search.samples",
              "total_timesteps": "train.total_timesteps", "seed": "train.seed",
              "timeout": "sandbox.timeout_s", "memory": "sandbox.memory_mb"}
# what a resumed run may change: how far and how it searches, not what it searches
RESUMABLE = ("search.", "train.total_timesteps", "sandbox.", "fitness.eval_episodes")


def apply_overrides(task: TaskSpec, settings: dict[str, Any] | None = None, algorithm: str | None = None,
                    **flags: Any) -> TaskSpec:
    """The task with command-line settings applied (validated again, never mutated); a bad
    value is reported under the flag that gave it (``--iterations: search.iterations: ...``).
    ``algorithm`` (``--algorithm``) comes first: the other algorithm's train section (see
    :func:`~rewardsmith.train.config.with_algorithm`), which ``settings`` then change."""
    if algorithm is not None:
        task = with_algorithm_of(task, algorithm)
    task = task.with_settings(dict(settings or {}))
    for name, value in flags.items():
        if value is not None:
            task = task.with_settings({TASK_FLAGS[name]: value}, source=flag(name))
    return task


def with_algorithm_of(task: TaskSpec, algorithm: str) -> TaskSpec:
    """``task`` trained with ``algorithm`` (ppo or sac); one-line errors for an unknown one or an
    env the algorithm cannot drive (SAC on discrete actions)."""
    from .task import check_task
    from .train.config import ALGORITHMS, with_algorithm

    if algorithm not in ALGORITHMS:
        raise OptionError(f"--algorithm {algorithm}: choose one of {', '.join(ALGORITHMS)}")
    if task.train.algorithm == algorithm:
        return task
    switched = task.model_copy(update={"train": with_algorithm(task.train, algorithm)})
    check_task(switched, "--algorithm")
    return switched


def check_device(device: str) -> None:
    """A device this machine has, or a one-line :class:`OptionError` before anything runs."""
    if device.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise OptionError(f"--device {device}: CUDA is not available on this machine (use --device cpu or auto)")
        index = int(device.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise OptionError(f"--device {device}: this machine has {torch.cuda.device_count()} CUDA device(s)")


def solve(task: TaskSpec | str | Path | None = None, *, out: str | Path | None = None,
          resume: str | Path | None = None, settings: dict[str, Any] | None = None,
          iterations: int | None = None, samples: int | None = None, total_timesteps: int | None = None,
          timeout: float | None = None, memory: int | None = None, seed: int | None = None,
          algorithm: str | None = None, reporter=None, **options: Any) -> SolveResult:
    """Search for a reward that makes a trained policy solve ``task``.

    ``options`` are :class:`~rewardsmith.options.SolveOptions` fields (``model``, ``sandbox``,
    ``executor``, ``feedback``, ``device``, ``max_cost``, ...); ``settings`` and the task flags
    (``iterations``, ``samples``, ``total_timesteps``, ``timeout``, ``memory``, ``seed``) change
    task fields. Every artifact goes to the run directory (``out``, default
    ``runs/<task>-<time>``); ``resume`` continues an earlier run in place without redoing
    finished candidates, with the options it was started with unless new ones are given (and
    of the task only what says how far and how it searches: ``search.*``, budgets, limits).
    With ``feedback="human"`` a person ranks each iteration; without a terminal the run stops
    with :class:`~rewardsmith.errors.FeedbackPending` until ``rewardsmith rank`` saved a ranking.
    With ``feedback="vlm"`` a vision-language model (``vlm_model``, ``vlm_api_base``; default the
    designer's model) ranks them from frames of their recorded episodes.
    """
    from .loop import SilentReporter
    from .runners.executors import cpu_count, trained_at_once
    from .runners.jobs import choose_sandbox

    reporter = reporter or SilentReporter()
    flags = dict(iterations=iterations, samples=samples, total_timesteps=total_timesteps, timeout=timeout,
                 memory=memory, seed=seed)
    if resume is not None:
        if task is not None:
            raise OptionError("give a task file or --resume RUN, not both: a resumed run keeps its own task "
                              "(RUN/task.yaml); change its fields with --set or the flags")
        if algorithm is not None:
            raise OptionError("--algorithm cannot change when a run is resumed (it defines what the run searches); "
                              "start a new run for that")
        run, stored_task, stored = RunDir.open(Path(resume))
        if run.single:
            raise RunDirError(f"{resume} holds one candidate of `rewardsmith train`; it cannot be resumed "
                              "(start a solve with the task file instead)")
        opts = SolveOptions.stored(stored).merged(**options)
        task_spec = _resumed_task(stored_task, settings, flags)
        for line in _resume_notes(stored_task, task_spec, SolveOptions.stored(stored), opts):
            reporter.message(line)
    else:
        if task is None:
            raise RewardsmithError("give a task file, or --resume RUN to continue a run")
        opts = SolveOptions.build(**options)
        task_spec = apply_overrides(as_task(task), settings, algorithm=algorithm, **flags)
    check_device(opts.device)
    # build everything that can fail on user input before writing anything
    box = choose_sandbox(opts.sandbox, task_spec)
    for line in sandbox_notes(box):
        reporter.message(line)
    run_path = run.path if resume is not None else Path(out) if out else default_run_path(task_spec.name)
    check_writable(run_path, "--resume" if resume is not None else "--out")
    if resume is None and run_path.is_dir() and any(run_path.iterdir()):
        raise RunDirError(f"{run_path} already exists and is not empty; choose another --out "
                          f"or continue it with --resume {run_path}")
    # warm workers start now, while the model is checked and the designer works: one per
    # candidate training at once, at most one per core. A candidate's jobs run one after another,
    # each in a worker, so with more candidates than cores their jobs take turns; each more
    # worker would cost its own import of torch (~1.7 s of a core) beside the first trainings.
    at_once = trained_at_once(max(task_spec.search.samples, opts.final_seeds or 1), opts.parallel)
    box = warm_workers(box, opts, task_spec, jobs=min(at_once, cpu_count()), notify=reporter.message)
    try:
        return _solve(box, opts, task_spec, run_path, resume, run if resume is not None else None,
                      stored_task if resume is not None else None, stored if resume is not None else None, reporter)
    finally:
        box.close()


def _solve(box, opts: SolveOptions, task_spec: TaskSpec, run_path: Path, resume, run, stored_task, stored,
           reporter) -> SolveResult:
    from .critic import Critic
    from .designer import make_designer
    from .feedback import make_feedback
    from .loop import Solver
    from .runners.executors import make_executor
    from .runners.sandboxes import Limits

    llm = _llm_client(opts) if opts.model != "builtin" else None
    vlm = _vlm_client(opts, llm) if opts.feedback == "vlm" else None
    judge = make_feedback(opts.feedback, run_path=run_path, noise=opts.feedback_noise, seed=task_spec.train.seed,
                          vlm=vlm)
    designer = make_designer(opts.model, llm=llm)
    pool = make_executor(opts.executor, box, parallel=opts.parallel, address=opts.ray_address,
                         notify=reporter.message)
    try:
        if resume is None:
            run = RunDir.create(run_path, task_spec, opts.model_dump(mode="json"))
        else:
            run.remove_partial_writes()
            _redo_limited(run, stored_task, task_spec, reporter)
            if task_spec != stored_task:
                atomic_write_text(run.path / "task.yaml", _task_yaml(task_spec))
            if opts != SolveOptions.stored(stored):
                run.save_options(opts.model_dump(mode="json"))
        reviewer = explainer = None
        client = llm or vlm  # the VLM's client is the designer's or its sibling: one tally and log
        if client is not None:
            client.attach(run.path / "llm")
            previous = run.load_summary() if resume is not None else None
            if previous is not None:
                client.add_previous_usage(previous.llm)
        if llm is not None:
            from .analyzer.llm import TrajectoryAnalyzer
            from .critic.llm_review import LLMCritic

            critic_on = opts.llm_critic if opts.llm_critic is not None else task_spec.search.llm_critic
            reviewer = LLMCritic(llm) if critic_on else None
            explainer = TrajectoryAnalyzer(llm)
        limits = Limits(timeout_s=task_spec.sandbox.timeout_s, memory_mb=task_spec.sandbox.memory_mb)
        store, screening = _episode_store(task_spec, run.path)
        critic = Critic(task_spec, box, limits, run.path / "checks", opts.device, reviewer, screening=screening)
        solver = Solver(task_spec, run, designer, critic, pool, judge, reporter, opts.device,
                        final_seeds=opts.final_seeds, explainer=explainer,
                        usage=(lambda: client.usage) if client is not None else None, episodes=store)
        try:
            return SolveResult(run.path, solver.solve())
        except KeyboardInterrupt:
            raise SolveInterrupted(run.path) from None
    finally:
        pool.close()


def warm_workers(box, opts: SolveOptions, task: TaskSpec, jobs: int, notify=None):
    """``box`` with warm workers in front, unless the options or the task say cold:
    ``--cold-workers``, a Ray executor (its nodes start their own sandboxes), a backend without
    warm workers (process) or an Isaac Gym env (it must load before torch). The workers are the
    resident ones (``rewardsmith workers start``) when they run for this backend and code, else
    a pool of this command's own, started now."""
    if (opts.cold_workers or opts.executor != "local" or not hasattr(box, "warm_start")
            or task.env.backend == "isaacgym"):
        return box
    from .runners.sandboxes import Limits, resident
    from .runners.sandboxes.warm import WarmSandbox

    limits = Limits(timeout_s=task.sandbox.timeout_s, memory_mb=task.sandbox.memory_mb)
    env_spec = task.env.model_dump(mode="json")
    shared, why_not = resident.connect(box, env_spec, jobs, limits)
    if shared is not None:
        return shared
    if why_not and notify is not None:
        notify(why_not)
    return WarmSandbox(box, env_spec, keep=jobs, limits=limits)


def _episode_store(task: TaskSpec, run_path: Path):
    """The run's episode store (``RUN/episodes/``; reopened on resume) and the critic's
    screening on it, when screening is on."""
    from .critic.screening import Screening
    from .episodes import EpisodeStore, variable_shapes

    if not task.search.screening.enabled or task.search.episode_store_mb <= 0:
        return None, None
    store = EpisodeStore(run_path / "episodes", int(task.search.episode_store_mb * 1024 * 1024),
                         variable_shapes(task.env.describe()))
    return store, Screening(store, task.search.screening)


def sandbox_notes(box) -> list[str]:
    """What to tell the user about the sandbox chosen: why safer ones were passed over, and a
    warning when there is no isolation."""
    lines = [f"sandbox: {box.name} ({'; '.join(box.skipped)})"] if box.skipped else []
    if not box.safe:
        lines.append("warning: reward code runs with --sandbox process: limits only, no isolation (install "
                     "bubblewrap or Docker for a real sandbox)")
    return lines


def _resumed_task(stored: TaskSpec, settings: dict[str, Any] | None, flags: dict[str, Any]) -> TaskSpec:
    """The stored task with what may change on resume changed; refuse the rest."""
    given = [(f"--set {key}", key) for key in settings or {}]
    given += [(f"{flag(name)} ({TASK_FLAGS[name]})", TASK_FLAGS[name]) for name, v in flags.items() if v is not None]
    fixed = [label for label, key in given if not key.startswith(RESUMABLE)]
    if fixed:
        raise OptionError(f"{fixed[0]} cannot change when a run is resumed (it defines what the run searches); "
                          "start a new run for that")
    return apply_overrides(stored, settings, **flags)


def _flat(model) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in model.model_dump(mode="json").items():
        if isinstance(value, dict):
            out.update({f"{key}.{k}": v for k, v in value.items()})
        else:
            out[key] = value
    return out


def _resume_notes(old_task: TaskSpec, new_task: TaskSpec, old: SolveOptions, new: SolveOptions) -> list[str]:
    before, after = _flat(old_task), _flat(new_task)
    lines = [f"resume: {key} {before[key]} -> {after[key]}" for key in after if before.get(key) != after[key]]
    lines += [f"resume: {flag(name)} {a} -> {b}" for name, (a, b) in old.changes(new).items()]
    if lines:
        lines.append("resume: the changes apply to what is not done yet (finished candidates are kept)")
    return lines


def _redo_limited(run: RunDir, old: TaskSpec, new: TaskSpec, reporter) -> None:
    """Candidates of the unfinished iteration that failed on a limit that is now higher are redone."""
    raised = []
    if new.sandbox.timeout_s > old.sandbox.timeout_s:
        raised.append("timeout")
    if new.sandbox.memory_mb > old.sandbox.memory_mb:
        raised.append("out of memory")
    if not raised:
        return
    iteration = len(run.history())
    for candidate in run.load_proposals(iteration) or []:
        result = run.load_result(iteration, candidate.index)
        reason = _limit_reason(result.reason or "") if result else ""
        if result is not None and result.status in ("failed", "rejected") and reason.startswith(tuple(raised)):
            run.forget_result(iteration, candidate.index)
            reporter.message(f"resume: iteration {iteration + 1} candidate {candidate.index} ({reason[:40]}) is redone "
                             "with the higher limit")


def _limit_reason(reason: str) -> str:
    """``timeout: ...`` or ``out of memory ...`` when a job (training, evaluation or the critic's
    dry run) ended on a limit, whatever job it was."""
    for prefix in ("critic: ", "the dry run failed: ", "evaluation "):
        reason = reason.removeprefix(prefix)
    return reason


def rank(run: str | Path, iteration: int | None = None) -> Ranking | None:
    """Let a person rank an iteration's candidates in the terminal (default: the latest iteration).

    The ranking is appended to ``RUN/rankings.jsonl`` and returned; ``None`` if they quit.
    """
    import sys

    from .tui.model import load_iteration

    if RunDir.open(Path(run))[0].single:
        raise RunDirError(f"{run} holds the one candidate of a `rewardsmith train`: there is nothing to rank")
    view = load_iteration(Path(run), None if iteration is None else iteration - 1)
    check_writable(Path(run), "RUN")  # the ranking is saved there
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise RewardsmithError("rewardsmith rank needs an interactive terminal")
    from .tui.rank import RankApp

    return RankApp(view).run()


def _llm_client(options: SolveOptions):
    """The LLM client for a solve, checked with a cheap request (key, server, model) up front."""
    from .llm import make_llm

    llm = make_llm(options.model, api_base=options.api_base, max_cost=options.max_cost)
    llm.preflight()
    return llm


def _vlm_client(options: SolveOptions, llm):
    """The VLM judge's client (the designer's when it is the same model), checked up front with a
    request that carries a tiny image: a model that cannot take images is a one-line error."""
    from .feedback.vlm import check_vision
    from .llm import make_backend, make_llm

    model, api_base = options.vlm()
    if llm is not None and (model, api_base and api_base.rstrip("/")) == (llm.model, llm.backend.api_base):
        vlm = llm
    elif llm is not None:
        vlm = llm.sibling(make_backend(model, api_base))
    else:
        vlm = make_llm(model, api_base=api_base, max_cost=options.max_cost)
    check_vision(vlm)
    return vlm


def _task_yaml(task: TaskSpec) -> str:
    import yaml

    return yaml.safe_dump(task.model_dump(mode="json"), sort_keys=False)


def train_reward(task: TaskSpec | str | Path, reward: str | Path, *, sandbox: str = "auto",
                 device: str = "auto", out: str | Path | None = None, total_timesteps: int | None = None,
                 timeout: float | None = None, memory: int | None = None, seed: int | None = None,
                 settings: dict[str, Any] | None = None, threads: int | None = None, algorithm: str | None = None,
                 on_progress=None, notify=None, cold_workers: bool | None = None) -> tuple[CandidateResult, Path]:
    """Train and evaluate one reward (code or a file path) on ``task``; no designer involved.
    ``notify(line)`` hears which sandbox was chosen and why."""
    from .runners.executors import cpu_count
    from .runners.jobs import choose_sandbox

    opts = SolveOptions.build(sandbox=sandbox, device=device, cold_workers=cold_workers)
    task_spec = apply_overrides(as_task(task), settings, algorithm=algorithm, total_timesteps=total_timesteps,
                                timeout=timeout, memory=memory, seed=seed)
    code = _read_reward(reward)
    check_device(opts.device)
    box = choose_sandbox(opts.sandbox, task_spec)
    for line in sandbox_notes(box):
        (notify or (lambda text: None))(line)
    folder = Path(out) if out else default_run_path(f"{task_spec.name}-train")
    check_writable(folder, "--out")
    box = warm_workers(box, opts, task_spec, jobs=2, notify=notify)  # the training and its evaluation
    try:
        return _train_one(task_spec, code, folder, box, opts, threads or cpu_count(), on_progress)
    finally:
        box.close()


def _train_one(task_spec: TaskSpec, code: str, folder: Path, box, opts: SolveOptions, threads: int,
               on_progress) -> tuple[CandidateResult, Path]:
    from .runners.jobs import CandidateJob, train_and_evaluate
    from .runners.sandboxes import Limits

    run = RunDir.create_single(folder, task_spec, opts.model_dump(mode="json"))
    atomic_write_text(folder / "reward.py", code)
    start = time.perf_counter()
    description = task_spec.env.describe()
    verdict = static_check(code, description.reward_arguments)
    atomic_write_json(folder / "critic.json", verdict)
    identity: dict[str, Any] = dict(iteration=0, index=0, reward_file="reward.py", code=code, critic=verdict)
    if not verdict.ok:
        result = CandidateResult(status="rejected", reason=f"critic: {verdict.reason}", sandbox=box.name, **identity)
    else:
        limits = Limits(timeout_s=task_spec.sandbox.timeout_s, memory_mb=task_spec.sandbox.memory_mb)
        warm_up_tensorboard()
        job = CandidateJob(task_spec, code, folder, limits, opts.device, on_progress=on_progress)
        outcome = train_and_evaluate(job, box, threads=threads)
        result = result_of(outcome, task_spec.fitness.success_threshold, **identity)
        result = result.model_copy(update={"wall_s": time.perf_counter() - start})
    atomic_write_json(folder / "result.json", result)
    run.write_summary(single_summary(task_spec.name, result))
    log_candidate(folder / "tensorboard", result)
    return result, folder


@dataclass(frozen=True)
class Validation:
    """What ``validate`` found: the task as resolved and, with a reward, the critic's verdict and
    the dry run's report (``None`` without a reward: then only the task and the env were checked)."""

    task: TaskSpec
    verdict: CriticVerdict | None
    report: CheckReport | None


def validate(task: TaskSpec | str | Path, reward: str | Path | None = None, *, sandbox: str = "auto",
             device: str = "auto", settings: dict[str, Any] | None = None, seed: int | None = None,
             total_timesteps: int | None = None, timeout: float | None = None,
             memory: int | None = None, notify=None) -> Validation:
    """Check ``task`` and optionally a reward without training: the task file (schema, env,
    fitness), the env built and stepped in the sandbox, and with ``reward`` the critic (static
    check and the sandboxed dry run). Nothing is written outside a temporary folder.

    Problems of the task, the env or the machine raise a :class:`RewardsmithError`; a reward
    the critic rejects is a verdict with ``ok=False``.
    """
    import tempfile

    from .critic import Critic
    from .runners.jobs import choose_sandbox
    from .runners.sandboxes import Limits

    opts = SolveOptions.build(sandbox=sandbox, device=device)
    task_spec = apply_overrides(as_task(task), settings, seed=seed, total_timesteps=total_timesteps, timeout=timeout,
                                memory=memory)
    code = _read_reward(reward) if reward is not None else None
    check_device(opts.device)
    box = choose_sandbox(opts.sandbox, task_spec)
    for line in sandbox_notes(box):
        (notify or (lambda text: None))(line)
    limits = Limits(timeout_s=task_spec.sandbox.timeout_s, memory_mb=task_spec.sandbox.memory_mb)
    if hasattr(box, "warm_start") and task_spec.env.backend != "isaacgym":  # resident workers, if they run
        from .runners.sandboxes import resident

        box = resident.connect(box, task_spec.env.model_dump(mode="json"), 1, limits)[0] or box
    with tempfile.TemporaryDirectory(prefix="rewardsmith-validate-") as scratch:
        critic = Critic(task_spec, box, limits, Path(scratch), opts.device)
        verdict, report = critic.review(code) if code is not None else (None, None)
        if verdict is None or not verdict.ok:
            critic.check_env()  # a reward the critic rejected: did the env work at all?
    return Validation(task_spec, verdict, report)


def _read_reward(reward: str | Path) -> str:
    if isinstance(reward, Path) or (isinstance(reward, str) and "\n" not in reward and reward.endswith(".py")):
        path = Path(reward)
        if not path.is_file():
            raise RewardsmithError(f"{path}: no such reward file")
        try:
            return path.read_text()
        except (OSError, UnicodeDecodeError) as exc:
            raise RewardsmithError(f"{path}: cannot read the reward file ({getattr(exc, 'strerror', None) or exc})") from None
    return str(reward)


def describe(env):
    """The :class:`~rewardsmith.envs.description.EnvDescription` of an env: a name such as
    ``"gymnasium:Pendulum-v1"`` or ``"torch:CartPole"`` (a bare gymnasium id works too), or a
    gymnasium env or vector env object.

    >>> describe("gymnasium:Pendulum-v1").variable_names
    ['cos_theta', 'sin_theta', 'theta_dot']
    """
    from . import envs

    if isinstance(env, str):
        return envs.describe(env if ":" in env else f"gymnasium:{env}")
    from .envs.gymnasium.layout import describe_live

    return describe_live(env).description


def wrap(env, reward, variables=()):
    """``env`` (a gymnasium env or vector env) with its reward replaced by ``reward``; see
    :func:`rewardsmith.wrappers.wrap`. The reward code runs in this process."""
    from .wrappers import wrap as wrap_env

    return wrap_env(env, reward, variables)


def export(source: SolveResult | str | Path, out: str | Path | None = None, *, format: str = "module",
           sandbox: str = "auto", device: str = "auto", on_checked=None) -> str:
    """The best reward of a run (a run directory or a :class:`SolveResult`), written to ``out``
    when given. ``format="module"``: a standalone module that does not import rewardsmith.
    ``format="eureka"``: a TorchScript ``compute_reward`` in Eureka's form for an IsaacGymEnvs task,
    checked in the sandbox first (it must compile and give the trained reward's values);
    ``on_checked`` gets the line that says what was checked."""
    from .standalone import best_reward, export_run

    if out is not None:
        check_writable(Path(out), "-o", folder=False)
    path = source.run_dir if isinstance(source, SolveResult) else Path(source)
    if format == "module":
        text = export_run(path)
    elif format == "eureka":
        from .eureka_export import check_export, eureka_module

        best = best_reward(path)
        text = eureka_module(best)
        checked = check_export(best, text, sandbox, device)
        if on_checked is not None:
            on_checked(checked)
    else:
        raise OptionError(f"--format: {format!r} is not one of 'module', 'eureka'")
    if out is not None:
        atomic_write_text(Path(out), text)
    return text


def evaluate_run(run: SolveResult | str | Path, *, seeds: int = 5, episodes: int | None = None,
                 sandbox: str = "auto", device: str = "auto", timeout: float | None = None,
                 memory: int | None = None, on_seed=None):
    """Evaluate a run's best policy on ``seeds`` fresh evaluation seeds, in the sandbox (the
    policy's weights only, never the reward code). Writes ``policy_eval.json`` into the run and
    returns the :class:`~rewardsmith.schemas.PolicyEvaluation`."""
    from .policy_eval import final_evaluation
    from .runners.jobs import choose_sandbox
    from .runners.sandboxes import Limits

    if seeds < 1:
        raise RewardsmithError("--seeds must be at least 1")
    path = run.run_dir if isinstance(run, SolveResult) else Path(run)
    _, task, _ = RunDir.open(path)
    task = apply_overrides(task, timeout=timeout, memory=memory)  # checked like the task's own limits
    check_device(SolveOptions.build(device=device).device)
    check_writable(path, "RUN")  # policy_eval.json goes there
    limits = Limits(timeout_s=task.sandbox.timeout_s, memory_mb=task.sandbox.memory_mb)
    return final_evaluation(path, seeds, choose_sandbox(sandbox, task), limits, device=device, episodes=episodes,
                            on_seed=on_seed)
