"""The library API behind both ``import rewardsmith as rs`` and the CLI."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from .analyzer import analyze
from .critic import static_check
from .errors import RewardsmithError, RunDirError, SolveInterrupted
from .runs import RunDir, atomic_write_json, atomic_write_text, default_run_path
from .schemas import CandidateResult, Ranking, Summary
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


def apply_overrides(task: TaskSpec, *, iterations: int | None = None, samples: int | None = None,
                    total_timesteps: int | None = None, timeout: float | None = None,
                    memory: int | None = None) -> TaskSpec:
    """The task with command-line settings applied (validated again, never mutated)."""
    from pydantic import ValidationError

    from .errors import TaskFileError

    try:
        return task.with_overrides(search={"iterations": iterations, "samples": samples},
                                   train={"total_timesteps": total_timesteps},
                                   sandbox={"timeout_s": timeout, "memory_mb": memory})
    except ValidationError as exc:
        err = exc.errors()[0]
        raise TaskFileError(f"{'.'.join(map(str, err['loc']))}: {err['msg']}") from None


def solve(task: TaskSpec | str | Path | None = None, *, model: str | None = None, api_base: str | None = None,
          iterations: int | None = None, samples: int | None = None, sandbox: str | None = None,
          executor: str | None = None, feedback: str | None = None, device: str | None = None,
          out: str | Path | None = None, resume: str | Path | None = None, parallel: int | None = None,
          total_timesteps: int | None = None, timeout: float | None = None, memory: int | None = None,
          final_seeds: int | None = None, feedback_noise: float | None = None, max_cost: float | None = None,
          llm_critic: bool | None = None, ray_address: str | None = None, reporter=None) -> SolveResult:
    """Search for a reward that makes a trained policy solve ``task``.

    Every artifact goes to the run directory (``out``, default ``runs/<task>-<time>``);
    ``resume`` continues an earlier run in place without redoing finished candidates, with the
    options it was started with unless new ones are given. With ``feedback="human"`` a person
    ranks each iteration; without a terminal the run stops with
    :class:`~rewardsmith.errors.FeedbackPending` until ``rewardsmith rank`` saved a ranking.
    With an LLM ``model``, ``max_cost`` (US dollars) stops the run cleanly when reached, and
    ``llm_critic`` turns the LLM reward critic on or off (default: the task's ``search.llm_critic``).
    """
    from .designer import make_designer
    from .feedback import make_feedback
    from .loop import SilentReporter, Solver
    from .runners.executor import make_executor
    from .runners.sandbox import make_sandbox

    given = {"model": model, "api_base": api_base, "sandbox": sandbox, "executor": executor,
             "feedback": feedback, "device": device, "final_seeds": final_seeds, "feedback_noise": feedback_noise,
             "max_cost": max_cost, "llm_critic": llm_critic, "ray_address": ray_address}
    defaults = {"model": "builtin", "api_base": None, "sandbox": "auto", "executor": "local",
                "feedback": "metric", "device": "auto", "final_seeds": 0, "feedback_noise": None,
                "max_cost": None, "llm_critic": None, "ray_address": None}
    if resume is not None:
        run, stored_task, stored = RunDir.open(Path(resume))
        task_spec = apply_overrides(stored_task, iterations=iterations)
        options = {k: v if v is not None else stored.get(k, defaults[k]) for k, v in given.items()}
    else:
        if task is None:
            raise RewardsmithError("give a task file, or --resume RUN to continue a run")
        task_spec = apply_overrides(as_task(task), iterations=iterations, samples=samples,
                                    total_timesteps=total_timesteps, timeout=timeout, memory=memory)
        options = {k: v if v is not None else defaults[k] for k, v in given.items()}
    # build everything that can fail on user input before writing anything
    box = make_sandbox(options["sandbox"])
    run_path = run.path if resume is not None else Path(out) if out else default_run_path(task_spec.name)
    judge = make_feedback(options["feedback"], run_path=run_path, noise=options["feedback_noise"],
                          seed=task_spec.train.seed)
    llm = _llm_client(options) if options["model"] != "builtin" else None
    designer = make_designer(options["model"], llm=llm)
    pool = make_executor(options["executor"], parallel=parallel, address=options["ray_address"])
    try:
        if resume is None:
            run = RunDir.create(run_path, task_spec, options)
        else:
            run.remove_partial_writes()
            if task_spec != stored_task:
                atomic_write_text(run.path / "task.yaml", _task_yaml(task_spec))
        reviewer = explainer = None
        if llm is not None:
            from .analyzer_llm import TrajectoryAnalyzer
            from .critic_llm import LLMCritic

            llm.attach(run.path / "llm")
            previous = run.load_summary() if resume is not None else None
            if previous is not None:
                llm.add_previous_usage(previous.llm)
            critic_on = options["llm_critic"] if options["llm_critic"] is not None else task_spec.search.llm_critic
            reviewer = LLMCritic(llm) if critic_on else None
            explainer = TrajectoryAnalyzer(llm)
        solver = Solver(task_spec, run, designer, box, pool, judge, reporter or SilentReporter(), options["device"],
                        final_seeds=options["final_seeds"], reviewer=reviewer, explainer=explainer)
        try:
            return SolveResult(run.path, solver.solve())
        except KeyboardInterrupt:
            raise SolveInterrupted(run.path) from None
    finally:
        pool.close()


def rank(run: str | Path, iteration: int | None = None) -> Ranking | None:
    """Let a person rank an iteration's candidates in the terminal (default: the latest iteration).

    The ranking is appended to ``RUN/rankings.jsonl`` and returned; ``None`` if they quit.
    """
    import sys

    from .tui.model import load_iteration

    view = load_iteration(Path(run), None if iteration is None else iteration - 1)
    if not (sys.stdin.isatty() and sys.stdout.isatty()):
        raise RewardsmithError("rewardsmith rank needs an interactive terminal")
    from .tui.rank import RankApp

    return RankApp(view).run()


def _llm_client(options: dict):
    """The LLM client for a solve, checked with a cheap request (key, server, model) up front."""
    from .llm import make_llm

    if options["max_cost"] is not None and options["max_cost"] <= 0:
        raise RewardsmithError("--max-cost must be a positive amount of US dollars")
    llm = make_llm(options["model"], api_base=options["api_base"], max_cost=options["max_cost"])
    llm.preflight()
    return llm


def _task_yaml(task: TaskSpec) -> str:
    import yaml

    return yaml.safe_dump(task.model_dump(mode="json"), sort_keys=False)


def train_reward(task: TaskSpec | str | Path, reward: str | Path, *, sandbox: str = "auto",
                 device: str = "auto", out: str | Path | None = None, total_timesteps: int | None = None,
                 timeout: float | None = None, memory: int | None = None, threads: int | None = None,
                 on_progress=None) -> tuple[CandidateResult, Path]:
    """Train and evaluate one reward (code or a file path) on ``task``; no designer involved."""
    from .runners.executor import cpu_count
    from .runners.jobs import JobSpec, train_and_evaluate
    from .runners.sandbox import Limits, make_sandbox

    task_spec = apply_overrides(as_task(task), total_timesteps=total_timesteps, timeout=timeout, memory=memory)
    code = _read_reward(reward)
    box = make_sandbox(sandbox)
    folder = Path(out) if out else default_run_path(f"{task_spec.name}-train")
    if folder.exists() and any(folder.iterdir()):
        raise RunDirError(f"{folder} already exists and is not empty; choose another --out")
    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / "reward.py", code)
    atomic_write_text(folder / "task.yaml", _task_yaml(task_spec))
    start = time.perf_counter()
    description = task_spec.env.describe()
    verdict = static_check(code, description.reward_arguments)
    atomic_write_json(folder / "critic.json", verdict)
    common = dict(iteration=0, index=0, reward_file="reward.py", code=code, critic=verdict, sandbox=box.name)
    if not verdict.ok:
        result = CandidateResult(status="rejected", reason=f"critic: {verdict.reason}", **common)
    else:
        limits = Limits(timeout_s=task_spec.sandbox.timeout_s, memory_mb=task_spec.sandbox.memory_mb)
        warm_up_tensorboard()
        outcome = train_and_evaluate(JobSpec(task_spec, code, folder, limits, device), box,
                                     on_progress=on_progress, threads=threads or cpu_count())
        threshold = task_spec.fitness.success_threshold
        result = CandidateResult(
            status=outcome.status, reason=outcome.reason, train=outcome.train, eval=outcome.eval,
            fitness=outcome.eval.fitness if outcome.eval else None,
            success=bool(outcome.eval and outcome.eval.success),
            analysis=analyze(outcome.train, outcome.eval, threshold, outcome.status, outcome.reason),
            wall_s=time.perf_counter() - start, **common)
    atomic_write_json(folder / "result.json", result)
    log_candidate(folder / "tensorboard", result)
    return result, folder


def _read_reward(reward: str | Path) -> str:
    if isinstance(reward, Path) or (isinstance(reward, str) and "\n" not in reward and reward.endswith(".py")):
        path = Path(reward)
        if not path.is_file():
            raise RewardsmithError(f"{path}: no such reward file")
        return path.read_text()
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


def export(source: SolveResult | str | Path, out: str | Path | None = None) -> str:
    """The best reward of a run (a run directory or a :class:`SolveResult`) as a standalone
    module that does not import rewardsmith; written to ``out`` when given."""
    from .standalone import export_run

    text = export_run(source.run_dir if isinstance(source, SolveResult) else Path(source))
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
    from .runners.sandbox import Limits, make_sandbox

    if seeds < 1:
        raise RewardsmithError("--seeds must be at least 1")
    path = run.run_dir if isinstance(run, SolveResult) else Path(run)
    _, task, _ = RunDir.open(path)
    limits = Limits(timeout_s=timeout or task.sandbox.timeout_s, memory_mb=memory or task.sandbox.memory_mb)
    return final_evaluation(path, seeds, make_sandbox(sandbox), limits, device=device, episodes=episodes,
                            on_seed=on_seed)
