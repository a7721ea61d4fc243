"""Command line: thin wrappers over :mod:`rewardsmith.api`; user errors end with exit code 2."""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Optional

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
    help="Write RL reward functions as code, train policies on them in sandboxes, and refine "
         "them until the policy does what the task asks.")
out_console = Console()
err_console = Console(stderr=True, emoji=False)  # env ids like isaacgym:Ant: are not emoji

SandboxOpt = Annotated[Optional[SandboxName], typer.Option(
    "--sandbox", help="Where reward code runs: bwrap, docker, process (no isolation) or auto "
                      "(the safest available)  [default: auto]", show_default=False)]
DeviceOpt = Annotated[Optional[str], typer.Option(
    "--device", help="auto (CUDA when present), cpu, cuda or cuda:N  [default: auto]", show_default=False)]
SeedOpt = Annotated[Optional[int], typer.Option("--seed", help="Training seed (default: the task's train.seed).")]
SetOpt = Annotated[Optional[list[str]], typer.Option(
    "--set", metavar="KEY=VALUE", help="Change any task field, checked like the file: --set train.learning_rate=3e-4 "
                                       "--set search.samples=6 (repeatable).")]
TimeoutOpt = Annotated[Optional[float], typer.Option(
    "--timeout", help="Wall-clock limit per candidate job, seconds (default: the task's).")]
MemoryOpt = Annotated[Optional[int], typer.Option(
    "--memory", help="Memory limit per candidate job, MB (default: the task's).")]
StepsOpt = Annotated[Optional[int], typer.Option(
    "--total-timesteps", help="Env steps to train each candidate (default: the task's).")]


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
        help="local (this machine) or ray (a Ray cluster)  [default: local]", show_default=False)] = None,
    feedback: Annotated[Optional[FeedbackName], typer.Option(
        help="How candidates are judged: metric (task fitness), human (rank them in a terminal UI; "
             "without a terminal the run stops with exit code 3 until `rewardsmith rank RUN`) "
             "or synthetic (fitness with noise)  [default: metric]", show_default=False)] = None,
    feedback_noise: Annotated[Optional[float], typer.Option(
        help="Noise of --feedback synthetic: std as a fraction of the success threshold (default 0.1).")] = None,
    device: DeviceOpt = None,
    out: Annotated[Optional[Path], typer.Option(help="Run directory (default: runs/<task>-<time>).")] = None,
    resume: Annotated[Optional[Path], typer.Option(help="Continue the run in this directory.")] = None,
    parallel: Annotated[Optional[int], typer.Option(help="Candidates trained at once (default: one per core).")] = None,
    total_timesteps: StepsOpt = None,
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
        help="With --executor ray: the cluster to use (HOST:PORT); default: start a local one.")] = None,
    seed: SeedOpt = None,
    set_: SetOpt = None,
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
        _warn_if_unsafe(sandbox or "auto", reporter)
        try:
            result = run_solve(task, out=out, resume=resume, settings=parse_settings(set_ or []),
                               iterations=iterations, samples=samples, total_timesteps=total_timesteps,
                               timeout=timeout, memory=memory, seed=seed, reporter=reporter,
                               model=model, api_base=api_base, sandbox=sandbox, executor=executor,
                               feedback=feedback, feedback_noise=feedback_noise, device=device, parallel=parallel,
                               final_seeds=final_seeds, max_cost=max_cost, llm_critic=llm_critic,
                               ray_address=ray_address)
        except FeedbackPending as pending:
            err_console.print(f"stopped: {pending}", highlight=False, markup=False, soft_wrap=True)
            raise typer.Exit(pending.exit_code) from None
        except KeyboardInterrupt as stop:
            where = getattr(stop, "run_path", None) or resume or out
            hint = f"; continue with: rewardsmith solve --resume {where}" if where else " before the run started"
            err_console.print(f"\nstopped{hint}", highlight=False, markup=False, soft_wrap=True)
            raise typer.Exit(130) from None
    summary = result.summary
    if summary.llm.requests or summary.llm.cached:
        u = summary.llm
        out_console.print(f"LLM: {u.requests} requests, {u.cached} from the cache, "
                          f"{u.prompt_tokens + u.completion_tokens:,} tokens, {dollars(u.cost_usd)}", highlight=False)
    if summary.stopped_reason:
        out_console.print(f"Stopped: {summary.stopped_reason}. Continue with: rewardsmith solve --resume "
                          f"{result.run_dir} --max-cost MORE", highlight=False, markup=False, soft_wrap=True)
    if summary.best is None:
        out_console.print(f"No candidate trained successfully. See {result.run_dir}.")
        if summary.status == "done":
            raise typer.Exit(1)  # the search ran and found nothing: scripts (and `make demo`) should notice
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
    out_console.print(f"Run directory: {result.run_dir}  (summary.json, {best.reward_file})")


@app.command()
def train(
    task: Annotated[Path, typer.Argument(help="Task file (YAML).")],
    reward: Annotated[Path, typer.Option(help="Python file with compute_reward(...).")],
    sandbox: SandboxOpt = None,
    timeout: TimeoutOpt = None,
    memory: MemoryOpt = None,
    total_timesteps: StepsOpt = None,
    device: DeviceOpt = None,
    out: Annotated[Optional[Path], typer.Option(help="Output folder (default: runs/<task>-train-<time>).")] = None,
    seed: SeedOpt = None,
    set_: SetOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object as the last line.")] = False,
) -> None:
    """Train and evaluate a policy with one reward function (no designer)."""
    from .api import train_reward
    from .progress import RichReporter
    from .task import parse_settings

    reporter = RichReporter(err_console)
    _warn_if_unsafe(sandbox or "auto", reporter)
    with reporter.progress:
        row = reporter.progress.add_task("  training", total=1, fitness="-")

        def on_progress(payload: dict) -> None:
            if isinstance(payload.get("step"), (int, float)) and isinstance(payload.get("total"), (int, float)):
                fit = payload.get("eval_fitness") if payload.get("eval_fitness") is not None else payload.get("fitness")
                reporter.progress.update(row, completed=payload["step"], total=payload["total"],
                                         fitness=f"{fit:.3f}" if isinstance(fit, (int, float)) else "-")

        result, folder = train_reward(task, reward, sandbox=sandbox or "auto", device=device or "auto", out=out,
                                      total_timesteps=total_timesteps, timeout=timeout, memory=memory, seed=seed,
                                      settings=parse_settings(set_ or []), on_progress=on_progress)
    wall = time.perf_counter() - STARTED
    line = {"status": result.status, "fitness": result.fitness, "success": result.success,
            "reason": result.reason, "wall_s": round(wall, 3),
            "env_steps": result.train.env_steps if result.train else 0, "out": str(folder)}
    if as_json:
        print(json.dumps(line))
        return
    if result.analysis and result.analysis.text:
        out_console.print(result.analysis.text, highlight=False, markup=False)
    fitness = "-" if result.fitness is None else f"{result.fitness:.3f}"
    out_console.print(f"{result.status} · fitness {fitness} · {line['env_steps']:,} env steps · {wall:.1f} s · {folder}",
                      highlight=False, markup=False)


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
    out_console.print(f"continue the run with: rewardsmith solve --resume {run}", highlight=False, markup=False)


@app.command()
def report(run: Annotated[Path, typer.Argument(help="Run directory.")]) -> None:
    """Summarise a run in the terminal and write RUN/report.html (plots, best code, failures)."""
    from rich.table import Table

    from .report import load_results, write_report
    from .runs import RunDir

    run_dir, task, _ = RunDir.open(run)
    summary = run_dir.load_summary()
    table = Table(title=f"{task.name}: {task.description}", title_justify="left")
    for column in ("iter", "cand", "status", "fitness", "reason"):
        table.add_column(column)
    for c in load_results(run_dir):
        table.add_row(str(c.iteration + 1), str(c.index), c.status,
                      "-" if c.fitness is None else f"{c.fitness:.3f}", (c.reason or "")[:80])
    out_console.print(table)
    if summary and summary.best:
        b = summary.best
        out_console.print(f"best: {b.reward_file} · fitness {b.fitness:.3f} · success {b.success} · "
                          f"{summary.wall_s:.1f} s · {summary.status}", highlight=False)
    out_console.print(f"report: {write_report(run_dir.path)}", highlight=False)


@app.command()
def export(
    run: Annotated[Path, typer.Argument(help="Run directory.")],
    output: Annotated[Optional[Path], typer.Option("--output", "-o", help="Write the module here "
                                                   "(default: print it).")] = None,
) -> None:
    """Write the run's best reward as a standalone Python module (no rewardsmith import)."""
    from .api import export as export_reward

    text = export_reward(run, output)
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
    """Evaluate the best policy of RUN on several seeds; writes RUN/policy_eval.json.

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
        return
    if report.mean is None:
        out_console.print(f"No seed finished; see {run}/policy_eval/.", highlight=False, markup=False)
        return
    out_console.print(
        f"{report.candidate} ({len(report.seeds)} seeds x {report.episodes_per_seed} episodes): "
        f"fitness {report.mean:.3f} +- {report.std:.3f} (min {report.min:.3f}, max {report.max:.3f}); "
        f"{report.success_rate:.0%} of seeds pass {report.success_threshold:g} · {run}/policy_eval.json",
        highlight=False, markup=False)


sandbox_app = typer.Typer(help="Build or check the sandboxes that run reward code.", no_args_is_help=True)
app.add_typer(sandbox_app, name="sandbox")


@sandbox_app.command("build")
def sandbox_build() -> None:
    """Build the Docker image for this version of rewardsmith (once per code change)."""
    from .runners.sandboxes.image import build_image, connect

    client = connect()
    with err_console.status("building the sandbox image") as status:
        def report(line: str) -> None:
            err_console.print(f"  {line}", highlight=False, markup=False)
            status.update(line[:100])

        name = build_image(client, report)
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
        out_console.print(f"{backend:8} [green]ok[/]{picked}{note}")


def _print_code(code: str) -> None:
    if out_console.is_terminal:
        out_console.print(Syntax(code, "python", theme="ansi_dark", background_color="default", word_wrap=True))
    else:
        print(code)


def _warn_if_unsafe(sandbox: str, reporter) -> None:
    from .runners.sandboxes import make_sandbox

    try:
        box = make_sandbox(sandbox)
    except RewardsmithError:
        return  # reported when the command builds it
    if not box.safe:
        reporter.message("[yellow]warning:[/] reward code runs with --sandbox process: limits only, no "
                         "isolation (install bubblewrap or Docker for a real sandbox)")
        for why in box.skipped:
            reporter.message(f"  (not used: {escape(why)})")


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
