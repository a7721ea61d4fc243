"""Command line: thin wrappers over :mod:`rewardsmith.api`; user errors end with exit code 2."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Literal, Optional

import typer
from rich.console import Console
from rich.markup import escape
from rich.syntax import Syntax

from .errors import FeedbackPending, RewardsmithError
from .options import ExecutorName, FeedbackName, SandboxName
from .progress import dollars

STARTED = time.perf_counter()
# litellm would otherwise fetch a price list from the internet when imported
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

app = typer.Typer(
    name="rewardsmith", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
    help="Write RL reward functions as code, train policies on them in sandboxes, and refine "
         "them until the policy does what the task asks.")
# soft_wrap: lines are not cut at 80 columns when the output goes to a pipe or a file
out_console = Console(soft_wrap=True)
err_console = Console(stderr=True, emoji=False, soft_wrap=True)  # env ids like isaacgym:Ant: are not emoji


def _default(value: str) -> str:
    """The ``[default: X]`` note of an option whose real default is "not given" (None)."""
    return rf"  \[default: {value}]"


SandboxOpt = Annotated[Optional[SandboxName], typer.Option(
    "--sandbox", help="Where reward code runs: bwrap, docker, process (no isolation) or auto "
                      "(the safest available)" + _default("auto"), show_default=False)]
DeviceOpt = Annotated[Optional[str], typer.Option(
    "--device", help="auto (CUDA when present), cpu, cuda or cuda:N" + _default("auto"), show_default=False)]
ColdOpt = Annotated[Optional[bool], typer.Option(
    "--cold-workers/--warm-workers", help="Start a fresh sandbox (a new Python importing torch) for every job "
                                          "instead of forking jobs from warm sandboxed workers (default: warm; "
                                          "a resumed run keeps its choice).", show_default=False)]
SeedOpt = Annotated[Optional[int], typer.Option("--seed", help="Training seed (default: the task's train.seed).")]
SetOpt = Annotated[Optional[list[str]], typer.Option(
    "--set", metavar="KEY=VALUE", help="Change any task field, checked like the file: --set train.learning_rate=3e-4 "
                                       "--set search.samples=6 (repeatable).")]
TimeoutOpt = Annotated[Optional[float], typer.Option(
    "--timeout", help="Wall-clock limit per candidate job, seconds (default: the task's).")]
MemoryOpt = Annotated[Optional[int], typer.Option(
    "--memory", help="Memory limit per candidate job, MB (default: the task's).")]


def _count(text: str) -> int:
    """A whole number as people write step counts: 100000, 100_000 or 1e5."""
    try:
        value = float(str(text).replace("_", ""))
    except ValueError:
        raise typer.BadParameter(f"{text!r} is not a number") from None
    if not value.is_integer():
        raise typer.BadParameter(f"{text!r} is not a whole number")
    return int(value)


StepsOpt = Annotated[Optional[int], typer.Option(
    "--total-timesteps", parser=_count, metavar="N", help="Env steps to train each candidate, e.g. 2e5 "
                                                          "(default: the task's).")]
AlgorithmOpt = Annotated[Optional[Literal["ppo", "sac"]], typer.Option(
    help="Train with PPO or SAC (SAC: continuous actions only), in place of the task's train.algorithm; the "
         "train section then takes the other algorithm's defaults (keeping seed, early_stop, eval_every, "
         "checkpoints), which --set train.KEY=VALUE changes.", show_default=False)]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line (for scripts).")]


def _version(value: bool) -> None:
    if value:
        from . import __version__

        print(f"rewardsmith {__version__}")
        raise typer.Exit(0)


@app.callback()
def _main(version: Annotated[bool, typer.Option(
        "--version", callback=_version, is_eager=True, help="Show the version and exit.")] = False) -> None:
    """Write RL reward functions as code, train policies on them in sandboxes, and refine them
    until the policy does what the task asks."""


@app.command()
def solve(
    task: Annotated[Optional[Path], typer.Argument(help="Task file (YAML). Not needed with --resume.")] = None,
    model: Annotated[Optional[str], typer.Option(
        help="Reward designer: 'builtin' (offline, no model) or a litellm model name such as "
             "openai/gpt-4o or anthropic/claude-sonnet-4-5.")] = None,
    api_base: Annotated[Optional[str], typer.Option(help="Base URL of an OpenAI/Anthropic-compatible server.")] = None,
    iterations: Annotated[Optional[int], typer.Option(help="Design-train-reflect rounds (default: the task's).")] = None,
    samples: Annotated[Optional[int], typer.Option(help="Reward candidates per round (default: the task's).")] = None,
    sandbox: SandboxOpt = None,
    executor: Annotated[Optional[ExecutorName], typer.Option(
        help="local (this machine) or ray (a Ray cluster)" + _default("local"), show_default=False)] = None,
    feedback: Annotated[Optional[FeedbackName], typer.Option(
        help="How candidates are judged: metric (task fitness), human (rank them in a terminal UI; "
             "without a terminal the run stops with exit code 3 until `rewardsmith rank RUN`), "
             "synthetic (fitness with noise) or vlm (a vision-language model watches the rollouts)"
             + _default("metric"), show_default=False)] = None,
    feedback_noise: Annotated[Optional[float], typer.Option(
        help="Noise of --feedback synthetic: std as a fraction of the success threshold (default 0.1).")] = None,
    vlm_model: Annotated[Optional[str], typer.Option(
        help="With --feedback vlm: the litellm model that ranks the rollouts from their frames, such as "
             "openai/gpt-4o-mini (default: --model, if an LLM).")] = None,
    vlm_api_base: Annotated[Optional[str], typer.Option(
        help="With --feedback vlm: base URL of the VLM's OpenAI/Anthropic-compatible server.")] = None,
    device: DeviceOpt = None,
    out: Annotated[Optional[Path], typer.Option(help="Run directory (default: runs/<task>-<time>).")] = None,
    resume: Annotated[Optional[Path], typer.Option(help="Continue the run in this directory.")] = None,
    parallel: Annotated[Optional[int], typer.Option(
        help="Candidates trained at once (default: an iteration's, 2 per core at most).")] = None,
    total_timesteps: StepsOpt = None,
    algorithm: AlgorithmOpt = None,
    timeout: TimeoutOpt = None,
    memory: MemoryOpt = None,
    final_seeds: Annotated[Optional[int], typer.Option(
        help="At the end, retrain the best reward with this many other seeds and report mean and spread "
             "(Eureka uses 5; default 0).")] = None,
    max_cost: Annotated[Optional[float], typer.Option(
        help="Stop cleanly once the LLM has cost this many US dollars (litellm's prices).")] = None,
    llm_critic: Annotated[Optional[bool], typer.Option(
        "--llm-critic/--no-llm-critic",
        help="Let the LLM review each reward before training and veto semantic mistakes "
             "(default: the task's search.llm_critic).")] = None,
    ray_address: Annotated[Optional[str], typer.Option(
        help="With --executor ray: the cluster to join (HOST:PORT, or auto: RAY_ADDRESS or the cluster "
             "`ray start` started on this machine); default: start a local one for the run.")] = None,
    cold_workers: ColdOpt = None,
    seed: SeedOpt = None,
    set_: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Search for a reward function that makes a trained policy solve TASK.

    With an LLM (--model openai/gpt-4o, anthropic/claude-sonnet-4-5, ollama/..., hosted_vllm/...),
    keys come from the provider's usual environment variable (OPENAI_API_KEY, ANTHROPIC_API_KEY, ...)
    and answers are cached on disk ($REWARDSMITH_CACHE_DIR, default ~/.cache/rewardsmith/llm), so a
    re-run or --resume pays only once.
    """
    from .api import solve as run_solve
    from .progress import RichReporter
    from .task import parse_settings

    with RichReporter(err_console) as reporter:
        try:
            result = run_solve(task, out=out, resume=resume, settings=parse_settings(set_ or []),
                               iterations=iterations, samples=samples, total_timesteps=total_timesteps,
                               timeout=timeout, memory=memory, seed=seed, algorithm=algorithm, reporter=reporter,
                               model=model, api_base=api_base, sandbox=sandbox, executor=executor,
                               feedback=feedback, feedback_noise=feedback_noise, vlm_model=vlm_model,
                               vlm_api_base=vlm_api_base, device=device, parallel=parallel,
                               final_seeds=final_seeds, max_cost=max_cost, llm_critic=llm_critic,
                               ray_address=ray_address, cold_workers=cold_workers)
        except FeedbackPending as pending:
            err_console.print(f"stopped: {pending}", highlight=False, markup=False, soft_wrap=True)
            if as_json:
                print(json.dumps({"status": "stopped", "waiting_for": "ranking", "reason": str(pending),
                                  "run_dir": str(resume or out) if resume or out else None}))
            raise typer.Exit(pending.exit_code) from None
        except KeyboardInterrupt as stop:
            where = getattr(stop, "run_path", None) or resume or out
            hint = f"; continue with: rewardsmith solve --resume {where}" if where else " before the run started"
            err_console.print(f"\nstopped{hint}", highlight=False, markup=False, soft_wrap=True)
            raise typer.Exit(130) from None
    summary = result.summary
    # the search ran and found nothing: exit 1, so that scripts (and `make demo`) notice
    failed = summary.best is None and summary.status == "done"
    if as_json:
        print(json.dumps(_solve_line(result)))
        if failed:
            raise typer.Exit(1)
        return
    if summary.llm.requests or summary.llm.cached:
        u = summary.llm
        out_console.print(f"LLM: {u.requests} requests, {u.cached} from the cache, "
                          f"{u.prompt_tokens + u.completion_tokens:,} tokens, {dollars(u.cost_usd)}", highlight=False)
    if summary.stopped_reason:
        out_console.print(f"Stopped: {summary.stopped_reason}. Continue with: rewardsmith solve --resume "
                          f"{result.run_dir} --max-cost MORE", highlight=False, markup=False, soft_wrap=True)
    if summary.best is None:
        out_console.print(f"No candidate trained successfully. See {result.run_dir}.", highlight=False)
        if failed:
            raise typer.Exit(1)
        return
    best = summary.best
    _print_code(result.best_code or "")
    verdict = "[green]success[/]" if best.success else "[yellow]below the success threshold[/]"
    out_console.print(f"Best reward: iteration {best.iteration + 1}, candidate {best.index} · fitness "
                      f"{best.fitness:.3f} ({verdict}) · {summary.wall_s:.1f} s")
    if summary.final and summary.final.mean is not None:
        f = summary.final
        out_console.print(f"Retrained with {len(f.seeds)} other seeds: fitness {f.mean:.3f} ± {f.std:.3f}, "
                          f"success rate {f.success_rate:.0%}")
    out_console.print(f"Run directory: {result.run_dir}  (summary.json, {best.reward_file})", highlight=False)


def _solve_line(result) -> dict:
    """What a script needs of a solve, as one JSON object."""
    summary = result.summary
    best = summary.best
    counts: dict[str, int] = {}
    for c in summary.candidates:
        counts[c.status] = counts.get(c.status, 0) + 1
    return {"status": summary.status, "success": bool(best and best.success),
            "fitness": best.fitness if best else None, "best": best.model_dump(mode="json") if best else None,
            "candidates": counts, "iterations_done": summary.iterations_done, "wall_s": summary.wall_s,
            "stopped_reason": summary.stopped_reason, "llm": summary.llm.model_dump(mode="json"),
            "run_dir": str(result.run_dir)}


@app.command()
def train(
    task: Annotated[Path, typer.Argument(help="Task file (YAML).")],
    reward: Annotated[Path, typer.Option(help="Python file with compute_reward(...).")],
    sandbox: SandboxOpt = None,
    timeout: TimeoutOpt = None,
    memory: MemoryOpt = None,
    total_timesteps: StepsOpt = None,
    algorithm: AlgorithmOpt = None,
    device: DeviceOpt = None,
    out: Annotated[Optional[Path], typer.Option(help="Output folder (default: runs/<task>-train-<time>).")] = None,
    cold_workers: ColdOpt = None,
    seed: SeedOpt = None,
    set_: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Train and evaluate a policy with one reward function (no designer).

    Exit code 0 when the candidate trained, 1 when it was rejected or failed (the reason is
    printed, and is in the --json line)."""
    from .api import train_reward
    from .progress import RichReporter
    from .task import parse_settings

    reporter = RichReporter(err_console)
    with reporter:
        row = reporter.progress.add_task("  training", total=1, fitness="-")

        def on_progress(payload: dict) -> None:
            if isinstance(payload.get("step"), (int, float)) and isinstance(payload.get("total"), (int, float)):
                fit = payload.get("eval_fitness") if payload.get("eval_fitness") is not None else payload.get("fitness")
                reporter.progress.update(row, completed=payload["step"], total=payload["total"],
                                         fitness=f"{fit:.3f}" if isinstance(fit, (int, float)) else "-")

        result, folder = train_reward(task, reward, sandbox=sandbox or "auto", device=device or "auto", out=out,
                                      total_timesteps=total_timesteps, timeout=timeout, memory=memory, seed=seed,
                                      settings=parse_settings(set_ or []), algorithm=algorithm,
                                      on_progress=on_progress,
                                      notify=reporter.message, cold_workers=cold_workers)
    wall = time.perf_counter() - STARTED
    line = {"status": result.status, "fitness": result.fitness, "success": result.success,
            "reason": result.reason, "wall_s": round(wall, 3),
            "env_steps": result.train.env_steps if result.train else 0, "out": str(folder)}
    if as_json:
        print(json.dumps(line))
    else:
        if result.analysis and result.analysis.text:
            out_console.print(result.analysis.text, highlight=False, markup=False)
        fitness = "-" if result.fitness is None else f"{result.fitness:.3f}"
        out_console.print(f"{result.status} · fitness {fitness} · {line['env_steps']:,} env steps · {wall:.1f} s · "
                          f"{folder}", highlight=False, markup=False)
    if result.status != "ok":
        err_console.print(f"{result.status}: {result.reason}", highlight=False, markup=False)
        raise typer.Exit(1)


@app.command()
def validate(
    task: Annotated[Path, typer.Argument(help="Task file (YAML).")],
    reward: Annotated[Optional[Path], typer.Option(help="Also check this reward (static check and dry run).")] = None,
    sandbox: SandboxOpt = None,
    device: DeviceOpt = None,
    total_timesteps: StepsOpt = None,
    timeout: TimeoutOpt = None,
    memory: MemoryOpt = None,
    seed: SeedOpt = None,
    set_: SetOpt = None,
    as_json: JsonOpt = False,
) -> None:
    """Check a task file (and a reward) without training: the fields, the env (built and stepped
    in the sandbox) and the fitness; with --reward the critic's static check and its dry run.

    Exit code 0 when all is well, 1 when the critic rejects the reward (the reason is printed),
    2 when the task, the env or the machine has a problem."""
    from .api import validate as run_validate
    from .task import parse_settings

    found = run_validate(task, reward, sandbox=sandbox or "auto", device=device or "auto", seed=seed,
                         total_timesteps=total_timesteps, timeout=timeout, memory=memory,
                         settings=parse_settings(set_ or []),
                         notify=lambda line: err_console.print(line, soft_wrap=True, markup=False, highlight=False))
    verdict = found.verdict
    description = found.task.env.describe()
    if as_json:
        print(json.dumps({"task": found.task.name, "env": found.task.env.name, "ok": verdict is None or verdict.ok,
                          "variables": description.variable_names,
                          "verdict": verdict.model_dump(mode="json") if verdict else None,
                          "components": found.report.components if found.report else None}))
    else:
        out_console.print(f"{task}: the task is valid; {found.task.env.name} builds and steps "
                          f"({len(description.variables)} state variables)", highlight=False, markup=False)
    if verdict is None:
        return
    for warning in verdict.warnings:
        err_console.print(f"warning: {warning}", highlight=False, markup=False)
    if not verdict.ok:
        err_console.print(f"rejected ({verdict.stage}): {verdict.reason}", highlight=False, markup=False)
        raise typer.Exit(1)
    if not as_json:
        components = ", ".join(found.report.components) if found.report else "-"
        out_console.print(f"{reward}: passes the static check and the dry run (components: {components})",
                          highlight=False, markup=False)


@app.command()
def schema(
    markdown: Annotated[bool, typer.Option("--markdown", help="The field reference as Markdown tables "
                                                             "(as in the README) instead of JSON Schema.")] = False,
) -> None:
    """Print the JSON Schema of a task file (for editors and validators), or its field reference."""
    from . import reference

    print(reference.markdown() if markdown else json.dumps(reference.json_schema(), indent=2))


@app.command(name="tasks")
def list_tasks() -> None:
    """List the tasks that come with rewardsmith (use one by name: rewardsmith solve cartpole)."""
    import yaml

    from .task import shipped_tasks

    for name, path in shipped_tasks().items():
        try:
            data = yaml.safe_load(path.read_text()) or {}
            env = data.get("env", {})
            where = f"{env.get('backend')}:{env.get('id')}"
            goal = " ".join(str(data.get("description", "")).split())
        except (OSError, yaml.YAMLError, AttributeError):
            where, goal = "?", "(unreadable)"
        out_console.print(f"{name:24} {where:34} {goal[:90]}", highlight=False, markup=False, soft_wrap=True)


@app.command()
def describe(
    env: Annotated[str, typer.Argument(help="Environment as BACKEND:ID, e.g. torch:CartPole, or a task file "
                                            "(its env with the task's kwargs and variables).")],
    as_json: Annotated[bool, typer.Option("--json", help="Print the description as JSON.")] = False,
) -> None:
    """Show the named state variables of an environment (what a reward may use)."""
    from . import envs

    if env.endswith((".yaml", ".yml")):
        from .task import load_task

        description = load_task(Path(env)).env.describe()
    else:
        description = envs.describe(env)
    print(description.model_dump_json(indent=2) if as_json else description.to_text())


@app.command()
def rank(
    run: Annotated[Path, typer.Argument(help="Run directory.")],
    iteration: Annotated[Optional[int], typer.Option(help="Iteration to rank, from 1 (default: the latest).")] = None,
) -> None:
    """Watch an iteration's candidates and rank them (b best, w worst, 1-9 order, s submit, q quit)."""
    from .api import rank as run_rank

    ranking = run_rank(run, iteration)
    if ranking is None:
        err_console.print("quit without saving a ranking")
        return
    worst = "-" if ranking.worst is None else ranking.worst
    out_console.print(f"saved the ranking of iteration {ranking.iteration + 1}: best {ranking.best}, worst {worst}"
                      f" -> {run / 'rankings.jsonl'}", highlight=False, markup=False)
    from .runs import RunDir

    if RunDir(run).load_proposals(ranking.iteration + 1) is not None:
        out_console.print(f"note: iteration {ranking.iteration + 2} was already designed from the earlier judgement; "
                          "this ranking is kept but steers nothing", highlight=False, markup=False)
        return
    out_console.print(f"continue the run with: rewardsmith solve --resume {run}", highlight=False, markup=False)


@app.command()
def report(
    run: Annotated[Path, typer.Argument(help="Run directory (of a solve, or the folder of a train).")],
    as_json: JsonOpt = False,
) -> None:
    """Summarise a run in the terminal and write RUN/report.html (plots, best code, failures)."""
    from rich.table import Table

    from .report import judge_checks, load_policy_eval, load_results, write_report
    from .runs import RunDir

    run_dir, task, _ = RunDir.open(run)
    summary = run_dir.load_summary()
    results = load_results(run_dir)
    policy_eval = load_policy_eval(run_dir)
    page = write_report(run_dir.path)
    if as_json:
        print(json.dumps({
            "task": task.name, "status": summary.status if summary else None,
            "best": summary.best.model_dump(mode="json") if summary and summary.best else None,
            "candidates": [{"iteration": c.iteration, "index": c.index, "status": c.status, "fitness": c.fitness,
                            "success": c.success, "reason": c.reason} for c in results],
            "wall_s": summary.wall_s if summary else None,
            "final": summary.final.model_dump(mode="json") if summary and summary.final else None,
            "policy_eval": policy_eval.model_dump(mode="json") if policy_eval else None,
            "report": str(page)}))
        return
    table = Table(title=f"{task.name}: {task.description}", title_justify="left")
    for column in ("iter", "cand", "status", "fitness", "reason"):
        table.add_column(column)
    for c in results:
        table.add_row(str(c.iteration + 1), str(c.index), c.status,
                      "-" if c.fitness is None else f"{c.fitness:.3f}", escape((c.reason or "")[:80]))
    out_console.print(table)
    if summary and summary.best:
        b = summary.best
        out_console.print(f"best: {b.reward_file} · fitness {b.fitness:.3f} · success {b.success} · "
                          f"{summary.wall_s:.1f} s · {summary.status}", highlight=False, markup=False)
    if policy_eval and policy_eval.mean is not None:
        e = policy_eval
        out_console.print(f"policy evaluation ({len(e.seeds)} seeds x {e.episodes_per_seed} episodes): fitness "
                          f"{e.mean:.3f} +- {e.std:.3f}; {e.success_rate:.0%} of seeds pass {e.success_threshold:g}",
                          highlight=False, markup=False)
    checks = judge_checks(run_dir.load_rankings(), results)
    if checks:
        out_console.print(f"VLM judge: its best was the fittest candidate in {sum(c.agrees for c in checks)} of "
                          f"{len(checks)} iterations", highlight=False)
    out_console.print(f"report: {page}", highlight=False, markup=False)


@app.command()
def export(
    run: Annotated[Path, typer.Argument(help="Run directory.")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the module here "
                                                   "(default: print it).")] = None,
    format: Annotated[Literal["module", "eureka"], typer.Option(
        "--format", help="module: a standalone Python module; eureka: a TorchScript compute_reward for an "
                         "IsaacGymEnvs task, as Eureka writes it (checked in the sandbox first)")] = "module",
    sandbox: SandboxOpt = None,
    device: DeviceOpt = None,
) -> None:
    """Write the run's best reward as a standalone Python module (no rewardsmith import), or in
    Eureka's TorchScript form with --format eureka."""
    from .api import export as export_reward

    text = export_reward(run, output, format=format, sandbox=sandbox or "auto", device=device or "auto",
                         on_checked=lambda line: err_console.print(line, highlight=False))
    if output is None:
        print(text, end="")
    else:
        err_console.print(f"wrote {output}", highlight=False)


@app.command(name="eval")
def evaluate(
    run: Annotated[Path, typer.Argument(help="Run directory.")],
    seeds: Annotated[int, typer.Option(help="How many seeds.")] = 5,
    episodes: Annotated[Optional[int], typer.Option(help="Episodes per seed (default: the task's "
                                                         "fitness.eval_episodes).")] = None,
    sandbox: SandboxOpt = None,
    device: DeviceOpt = None,
    timeout: TimeoutOpt = None,
    memory: MemoryOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as one JSON object.")] = False,
) -> None:
    """Evaluate the best policy of RUN on several seeds; writes RUN/policy_eval.json (exit code 1
    when no seed finished).

    (To retrain the best reward from scratch per seed, Eureka-style, use solve --final-seeds.)"""
    from .api import evaluate_run

    def on_seed(one) -> None:
        score = "-" if one.fitness is None else f"{one.fitness:.3f}"
        err_console.print(f"  seed {one.seed}: fitness {score} {one.status}"
                          + (f" ({one.reason})" if one.reason else ""), highlight=False, markup=False)

    report = evaluate_run(run, seeds=seeds, episodes=episodes, sandbox=sandbox or "auto",
                          device=device or "auto", timeout=timeout, memory=memory, on_seed=on_seed)
    if as_json:
        print(report.model_dump_json())
    elif report.mean is None:
        out_console.print(f"No seed finished; see {run}/policy_eval/.", highlight=False, markup=False)
    if report.mean is None:
        raise typer.Exit(1)  # every seed failed: as for a candidate that failed
    if as_json:
        return
    out_console.print(
        f"{run if report.candidate == '.' else report.candidate} ({len(report.seeds)} seeds x "
        f"{report.episodes_per_seed} episodes): "
        f"fitness {report.mean:.3f} +- {report.std:.3f} (min {report.min:.3f}, max {report.max:.3f}); "
        f"{report.success_rate:.0%} of seeds pass {report.success_threshold:g} · {run}/policy_eval.json",
        highlight=False, markup=False)


sandbox_app = typer.Typer(help="Build or check the sandboxes that run reward code.", no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")


@sandbox_app.command("build")
def sandbox_build(
    task: Annotated[Optional[list[str]], typer.Option(
        "--task", help="A task (file or shipped name) whose env's packages the image must carry: every "
                       "distribution the env imports here goes in, your own env package too (repeatable).")] = None,
    with_: Annotated[Optional[list[str]], typer.Option(
        "--with", metavar="DIST", help="Another installed distribution to carry, at its version here (repeatable).")
    ] = None,
) -> None:
    """Build the Docker image for this version of rewardsmith (once per code change).

    It carries the guest's packages and every env simulator installed here (gymnasium's MuJoCo,
    Box2D and classic-control extras, Gymnasium-Robotics, Meta-World, ...), each at the version
    installed here, plus what --task and --with add; a rebuild keeps what the last image carried.
    """
    from .api import as_task
    from .runners.sandboxes.image import build_image, connect

    tasks = [as_task(t) for t in task or []]
    client = connect()
    with err_console.status("building the sandbox image") as status:
        def report(line: str) -> None:
            err_console.print(f"  {line}", highlight=False, markup=False)
            status.update(line[:100])

        name = build_image(client, report, tasks=tasks, extra=with_ or [])
    out_console.print(name, highlight=False)


@sandbox_app.command("check")
def sandbox_check(
    name: Annotated[Optional[str], typer.Argument(help="Check only this backend; exit code 2 if it cannot run.")] = None,
) -> None:
    """Show which sandboxes work here and which one --sandbox auto picks."""
    from .runners.sandboxes import SANDBOXES, make_sandbox

    for backend in [name] if name else [*SANDBOXES, "auto"]:
        try:
            box = make_sandbox(backend)
        except RewardsmithError as exc:
            if name:
                raise
            out_console.print(f"{backend:8} [red]unavailable[/]: {escape(str(exc))}")
            continue
        note = "" if box.safe else " [yellow](no isolation)[/]"
        picked = f" -> {box.name}" if backend == "auto" else ""
        image = getattr(box, "image", None)
        shown = f" ({image})" if image and backend == "docker" else ""
        out_console.print(f"{backend:8} [green]ok[/]{picked}{note}{escape(shown)}")


workers_app = typer.Typer(
    help="Keep warm sandboxed workers between commands (opt-in): a train or solve that finds them ready "
         "starts its first job at once, without starting a sandbox or importing torch.", no_args_is_help=True)
app.add_typer(workers_app, name="workers")


@workers_app.command("start")
def workers_start(
    sandbox: SandboxOpt = None,
    task: Annotated[Optional[list[str]], typer.Option(
        "--task", help="Warm workers for this task's env now (file or shipped name; repeatable). Without it a "
                       "pool starts for each env with the first command that needs it.")] = None,
    workers: Annotated[Optional[int], typer.Option(
        "--workers", min=1, help="Workers per task (default: one per core).", show_default=False)] = None,
    idle: Annotated[float, typer.Option("--idle", min=0.1, help="Stop after this many minutes without a job.")] = 15.0,
) -> None:
    """Start the resident warm workers of a sandbox in the background (or find them running).

    They run as you, each job in a fresh process forked inside its sandbox, exactly as a command's
    own warm workers do; commands of the same rewardsmith code and sandbox use them (their job logs
    say so), others start their own. They stop after --idle minutes without a job, or with
    `rewardsmith workers stop`.
    """
    from .api import as_task
    from .runners.executors import cpu_count
    from .runners.jobs import choose_sandbox
    from .runners.sandboxes import Limits, resident

    tasks = [as_task(t) for t in task or []]
    box = choose_sandbox(sandbox or "auto", tasks[0] if tasks else None)
    if not hasattr(box, "warm_start"):
        raise RewardsmithError(f"the {box.name} sandbox has no warm workers; use --sandbox bwrap or docker")
    status = resident.start(box.name, idle_s=idle * 60)
    for spec in tasks:
        limits = Limits(timeout_s=spec.sandbox.timeout_s, memory_mb=spec.sandbox.memory_mb)
        with err_console.status(f"warming {workers or cpu_count()} workers for {spec.name}"):
            status = resident.warm(box.name, spec.env.model_dump(mode="json"), limits, workers or cpu_count()) or status
    _print_workers(status)


@workers_app.command("status")
def workers_status() -> None:
    """Show the resident warm workers of each sandbox: their pools, jobs served, time idle."""
    from .runners.sandboxes import SANDBOXES, resident

    found = [status for backend in SANDBOXES if (status := resident.ask(backend, {"op": "status"}))]
    if not found:
        out_console.print("no resident warm workers run (start them with `rewardsmith workers start`)")
    for status in found:
        _print_workers(status)


@workers_app.command("stop")
def workers_stop(sandbox: SandboxOpt = None) -> None:
    """Stop the resident warm workers (of one sandbox, or all); running jobs end first."""
    from .runners.sandboxes import SANDBOXES, resident

    backends = [sandbox] if sandbox and sandbox != "auto" else list(SANDBOXES)
    stopped = [backend for backend in backends if resident.stop(backend)]
    out_console.print(f"stopped the resident {', '.join(stopped)} workers" if stopped
                      else "no resident warm workers were running", highlight=False)


def _print_workers(status: dict) -> None:
    pools = ", ".join(f"{p['env']}: {p['ready']} ready, {p['busy']} busy" for p in status.get("pools", [])) or "no pool yet"
    out_console.print(f"resident {status['backend']} workers (pid {status['pid']}): {pools}; {status['jobs']} jobs "
                      f"served; idle {status['idle_s']:.0f} s, stop after {status['stops_after_s'] / 60:g} min without a job",
                      highlight=False, markup=False)


def _print_code(code: str) -> None:
    if out_console.is_terminal:
        out_console.print(Syntax(code, "python", theme="ansi_dark", background_color="default", word_wrap=True))
    else:
        print(code)


def main(argv: list[str] | None = None) -> None:
    """The console entry point: every error a user can cause ends in one line and exit code 2."""
    try:
        code = app(args=argv, prog_name="rewardsmith", standalone_mode=False)
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except typer.Abort:  # Ctrl-C outside a solve
        sys.exit(130)
    except RewardsmithError as exc:
        err_console.print(f"error: {exc}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(exc.exit_code)
    except typer.TyperException as exc:  # the parser's: unknown option, bad value, missing argument
        err_console.print(f"error: {_usage_message(exc)}", highlight=False, markup=False, soft_wrap=True)
        sys.exit(getattr(exc, "exit_code", 2))
    sys.exit(code if isinstance(code, int) else 0)


def _usage_message(exc: Exception) -> str:
    """click's message in one line: ``--sandbox: 'nope' is not one of 'auto', ...`` and where help is."""
    import re

    text = exc.format_message() if hasattr(exc, "format_message") else str(exc)
    text = re.sub(r"^Invalid value for '([^']+)': (Value error, )?", r"\1: ", " ".join(text.split()))
    ctx = getattr(exc, "ctx", None)
    where = f" (see {ctx.command_path} --help)" if ctx is not None else ""
    return text.rstrip(".") + where


if __name__ == "__main__":
    main()
