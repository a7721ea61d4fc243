"""A self-contained HTML report of a run: plots (PNG, embedded), the best reward's code, every
candidate with its status and reason, training and component curves, LLM cost, videos, and with
a VLM judge how often its best was the fittest candidate (a check of the judge).

``write_report(run_dir)`` returns the path of ``RUN/report.html``; everything it shows is read
from the run directory, so a report can be made at any time, also for a stopped run.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from pathlib import Path

from .runs import RunDir, atomic_write_text, check_writable
from .schemas import CandidateResult, PolicyEvaluation, Ranking, Summary
from .task import TaskSpec

STATUS_COLOURS = {"ok": "#2a7ab0", "rejected": "#d08c2a", "failed": "#c0392b", "skipped": "#8e8e8e"}


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _figure(width: float = 7.5, height: float = 3.6):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(width, height))
    ax.grid(alpha=0.3)
    return fig, ax


def fitness_plot(results: list[CandidateResult], threshold: float) -> str:
    """Fitness of every candidate by iteration; failed and rejected ones drawn at the bottom."""
    fig, ax = _figure()
    scored = [r.fitness for r in results if r.fitness is not None]
    floor = min(scored + [threshold]) - 0.05 * (abs(threshold) + 1e-9) if scored else 0.0
    for status, colour in STATUS_COLOURS.items():
        group = [r for r in results if r.status == status]
        if group:
            ax.scatter([r.iteration + 1 + 0.06 * (r.index - 1) for r in group],
                       [r.fitness if r.fitness is not None else floor for r in group],
                       c=colour, label=status, s=40, edgecolors="white", zorder=3)
    best_by_iteration: dict[int, float] = {}
    for r in results:
        if r.fitness is not None:
            best_by_iteration[r.iteration] = max(best_by_iteration.get(r.iteration, float("-inf")), r.fitness)
    if best_by_iteration:
        xs = sorted(best_by_iteration)
        ax.plot([x + 1 for x in xs], [best_by_iteration[x] for x in xs], color="#2a7ab0", alpha=0.5, label="best")
    ax.axhline(threshold, color="#27ae60", linestyle="--", label="success threshold")
    ax.set_xlabel("iteration")
    ax.set_ylabel("task fitness")
    ax.set_xticks(sorted({r.iteration + 1 for r in results}) or [1])
    ax.legend(loc="best", fontsize=8)
    ax.set_title("Fitness of each candidate")
    return _png(fig)


def training_plot(results: list[CandidateResult], threshold: float) -> str:
    """Task fitness over training (training episodes, and evaluations where they ran)."""
    fig, ax = _figure()
    for r in results:
        if not r.train or not r.train.checkpoints:
            continue
        steps = [c.step for c in r.train.checkpoints]
        line, = ax.plot(steps, [c.fitness if c.fitness is not None else float("nan") for c in r.train.checkpoints],
                        label=f"it {r.iteration + 1} cand {r.index}")
        evals = [(c.step, c.eval_fitness) for c in r.train.checkpoints if c.eval_fitness is not None]
        if evals:
            ax.scatter(*zip(*evals), color=line.get_color(), marker="x", s=30)
    ax.axhline(threshold, color="#27ae60", linestyle="--")
    ax.set_xlabel("env steps")
    ax.set_ylabel("task fitness (x: evaluation)")
    ax.set_title("Training curves of the best candidate of each iteration")
    ax.legend(fontsize=7, ncol=2)
    return _png(fig)


def component_plot(result: CandidateResult) -> str:
    fig, ax = _figure()
    checkpoints = result.train.checkpoints if result.train else []
    steps = [c.step for c in checkpoints]
    names = list(checkpoints[-1].components) if checkpoints else []
    for name in names:
        ax.plot(steps, [c.components[name].mean if name in c.components else float("nan") for c in checkpoints],
                marker="o", markersize=3, label=name)
    if checkpoints:
        ax.plot(steps, [c.reward.mean for c in checkpoints], color="black", linestyle=":", label="total")
    ax.set_xlabel("env steps")
    ax.set_ylabel("mean per step")
    ax.set_title(f"Reward components, iteration {result.iteration + 1} candidate {result.index}")
    ax.legend(fontsize=8)
    return _png(fig)


def _code_html(code: str) -> str:
    from pygments import highlight
    from pygments.formatters import HtmlFormatter
    from pygments.lexers import PythonLexer

    return highlight(code, PythonLexer(), HtmlFormatter(noclasses=True, style="friendly"))


def _media(path: Path) -> str:
    """An embedded video or animation, if the candidate has one."""
    for name, tag in (("rollout.mp4", "video"), ("rollout.gif", "img")):
        file = path / name
        if file.is_file() and file.stat().st_size < 8 * 1024 * 1024:
            data = base64.b64encode(file.read_bytes()).decode()
            if tag == "video":
                return f'<video controls loop muted width="360" src="data:video/mp4;base64,{data}"></video>'
            return f'<img width="360" alt="rollout" src="data:image/gif;base64,{data}">'
    return ""


def training_text(result: CandidateResult) -> str:
    """``3,000 env steps (ppo)``; for SAC that started from other candidates' transitions or
    received them while training, how many and what share of its updates' samples they were."""
    log = result.train
    if log is None:
        return ""
    text = f"{log.env_steps:,} env steps ({log.algorithm})"
    parts = [f"started from {log.reused_transitions:,} reused transitions"] if log.reused_transitions else []
    if log.shared_transitions:
        parts.append(f"received {log.shared_transitions:,} from the candidates training beside it")
    if parts:
        text += f"; {', '.join(parts)}, {log.reused_share:.0%} of its updates' samples"
    return text


def _fmt(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


@dataclass(frozen=True)
class JudgeCheck:
    """A VLM's ranking of one iteration against the task's fitness."""

    iteration: int
    model: str
    best: int
    best_fitness: float | None
    fitness_best: int
    top_fitness: float
    pairs_agreeing: float | None  # of the pairs of candidates both order, the fraction they order alike
    reason: str

    @property
    def agrees(self) -> bool:
        # a tie at the top counts: the VLM's pick is as fit as the fittest
        return self.best == self.fitness_best or self.best_fitness == self.top_fitness


def judge_checks(rankings: list[Ranking], results: list[CandidateResult]) -> list[JudgeCheck]:
    """For each iteration a VLM ranked (its latest ranking), whether its best was the fittest."""
    latest = {r.iteration: r for r in rankings if r.judge == "vlm"}
    checks = []
    for iteration, ranking in sorted(latest.items()):
        fitness = {r.index: r.fitness for r in results
                   if r.iteration == iteration and r.status == "ok" and r.fitness is not None}
        if len(fitness) < 2 or ranking.best not in fitness:
            continue
        top = max(fitness, key=lambda i: (fitness[i], -i))
        order = [i for i in ranking.order if i in fitness]
        pairs = [(a, b) for n, a in enumerate(order) for b in order[n + 1:] if fitness[a] != fitness[b]]
        alike = sum(fitness[a] > fitness[b] for a, b in pairs) / len(pairs) if pairs else None
        checks.append(JudgeCheck(iteration, ranking.model or "", ranking.best, fitness[ranking.best], top,
                                 fitness[top], alike, ranking.reasons.get(ranking.best, "")))
    return checks


def _judge_html(checks: list[JudgeCheck]) -> str:
    esc = html.escape
    agreed = sum(c.agrees for c in checks)
    rows = "".join(
        f"<tr><td>{c.iteration + 1}</td><td>{c.best} ({_fmt(c.best_fitness)})</td>"
        f"<td>{c.fitness_best} ({_fmt(c.top_fitness)})</td><td>{'yes' if c.agrees else 'no'}</td>"
        f"<td>{'-' if c.pairs_agreeing is None else f'{c.pairs_agreeing:.0%}'}</td><td>{esc(c.reason)}</td></tr>"
        for c in checks)
    models = ", ".join(sorted({c.model for c in checks if c.model})) or "the VLM"
    return (f"<h2>The VLM judge against the fitness</h2><p>{esc(models)} chose the fittest candidate in "
            f"<b>{agreed} of {len(checks)}</b> iterations it ranked.</p>"
            "<table><tr><th>iteration</th><th>VLM's best (fitness)</th><th>fittest (fitness)</th><th>agree</th>"
            "<th>pairs ordered alike</th><th>the VLM's reason for its best</th></tr>" + rows + "</table>")


def build_html(run: RunDir, task: TaskSpec, summary: Summary | None, results: list[CandidateResult]) -> str:
    threshold = task.fitness.success_threshold
    esc = html.escape
    best = None
    if summary and summary.best:
        best = next((r for r in results if (r.iteration, r.index) == (summary.best.iteration, summary.best.index)), None)
    best_per_iteration = []
    for it in sorted({r.iteration for r in results}):
        scored = [r for r in results if r.iteration == it and r.fitness is not None]
        if scored:
            best_per_iteration.append(max(scored, key=lambda r: r.fitness or 0.0))

    parts = [f"<h1>rewardsmith · {esc(task.name)}</h1>", f"<p class='goal'>{esc(task.description)}</p>"]
    facts = [("status", summary.status if summary else "no summary yet"),
             ("candidates", str(len(results))),
             ("wall time", f"{summary.wall_s:.1f} s" if summary else "-"),
             ("designer", summary.designer if summary else "-"), ("sandbox", summary.sandbox if summary else "-"),
             ("success threshold", _fmt(threshold))]
    if summary and summary.llm.requests:
        u = summary.llm
        facts.append(("LLM", f"{u.requests} requests ({u.cached} cached), {u.prompt_tokens + u.completion_tokens:,} "
                             f"tokens, ${u.cost_usd:.4f}"))
    if best:
        verdict = "solved" if best.success else "not solved"
        facts.insert(0, ("best", f"iteration {best.iteration + 1}, candidate {best.index}: fitness {_fmt(best.fitness)} "
                                 f"({verdict})"))
    parts.append("<table class='facts'>" + "".join(f"<tr><th>{esc(k)}</th><td>{esc(v)}</td></tr>" for k, v in facts)
                 + "</table>")
    if results:
        plot = fitness_plot(results, threshold)
        parts.append(f"<h2>Fitness</h2><img class='plot' alt='fitness per candidate' src='{plot}'>")
    if best_per_iteration and any(r.train for r in best_per_iteration):
        parts.append("<h2>Training</h2>" + f"<img class='plot' alt='training curves' "
                     f"src='{training_plot(best_per_iteration, threshold)}'>")
    if best:
        parts.append("<h2>Best reward</h2>" + _code_html(best.code or (run.path / best.reward_file).read_text()))
        if best.train:
            parts.append(f"<img class='plot' alt='reward components' src='{component_plot(best)}'>")
        media = _media(run.candidate_dir(best.iteration, best.index))
        if media:
            parts.append(f"<h3>What the best policy does</h3>{media}")
        if best.analysis:
            parts.append(f"<pre class='analysis'>{esc(best.analysis.text)}</pre>")
    checks = judge_checks(run.load_rankings(), results)
    if checks:
        parts.append(_judge_html(checks))
    final = summary.final if summary else None
    if final and final.mean is not None:
        cells = "".join(f"<tr><td>{s}</td><td>{esc(st)}</td><td>{_fmt(f)}</td></tr>"
                        for s, st, f in zip(final.seeds, final.statuses, final.fitness))
        parts.append(f"<h2>Best reward retrained with {len(final.seeds)} other seeds</h2>"
                     f"<p>fitness {final.mean:.3f} ± {final.std:.3f} (mean ± std), success rate "
                     f"{final.success_rate:.0%}</p><table><tr><th>seed</th><th>status</th><th>fitness</th></tr>"
                     f"{cells}</table>")
    evaluation = load_policy_eval(run)
    if evaluation and evaluation.seeds:
        cells = "".join(f"<tr><td>{s.seed}</td><td>{esc(s.status)}</td><td>{_fmt(s.fitness)}</td>"
                        f"<td>{esc(s.reason or '')}</td></tr>" for s in evaluation.seeds)
        spread = (f"fitness {evaluation.mean:.3f} ± {evaluation.std:.3f} (mean ± std, min {evaluation.min:.3f}, "
                  f"max {evaluation.max:.3f}), {evaluation.success_rate:.0%} of seeds pass "
                  f"{evaluation.success_threshold:g}" if evaluation.mean is not None else "no seed finished")
        parts.append(f"<h2>Best policy evaluated on {len(evaluation.seeds)} seeds</h2>"
                     f"<p>{esc(evaluation.candidate)}, {evaluation.episodes_per_seed} episodes per seed: {esc(spread)}</p>"
                     f"<table><tr><th>seed</th><th>status</th><th>fitness</th><th>reason</th></tr>{cells}</table>")
    rows = []
    for r in results:
        media = _media(run.candidate_dir(r.iteration, r.index)) if r is not best else ""
        rows.append(f"<tr><td>{r.iteration + 1}</td><td>{r.index}</td>"
                    f"<td style='color:{STATUS_COLOURS.get(r.status, '#333')}'>{esc(r.status)}</td>"
                    f"<td>{_fmt(r.fitness)}</td><td>{esc(training_text(r))}</td><td>{esc(r.reason or '')}</td>"
                    f"<td>{media}</td></tr>")
    parts.append("<h2>All candidates</h2><table class='cands'><tr><th>iteration</th><th>candidate</th><th>status</th>"
                 "<th>fitness</th><th>training</th><th>reason</th><th>rollout</th></tr>" + "".join(rows) + "</table>")
    style = ("body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;padding:0 1em;color:#222}"
             "h1{margin-bottom:0.2em} .goal{color:#555;font-style:italic} table{border-collapse:collapse;margin:1em 0}"
             "th,td{padding:4px 10px;border-bottom:1px solid #ddd;text-align:left;vertical-align:top}"
             ".plot{max-width:100%;display:block;margin:1em 0} pre{background:#f7f7f7;padding:1em;overflow-x:auto}")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>rewardsmith report: {esc(task.name)}</title>"
            f"<style>{style}</style></head><body>{''.join(parts)}</body></html>")


def load_results(run: RunDir) -> list[CandidateResult]:
    return run.results()


def load_policy_eval(run: RunDir) -> PolicyEvaluation | None:
    """What ``rewardsmith eval`` measured (``policy_eval.json``), if it ran."""
    return run.load(run.path / "policy_eval.json", PolicyEvaluation)


def write_report(run_dir: Path) -> Path:
    """Write ``RUN/report.html`` and return its path."""
    run, task, _ = RunDir.open(run_dir)
    check_writable(run.path, "RUN")
    page = build_html(run, task, run.load_summary(), load_results(run))
    path = run.path / "report.html"
    atomic_write_text(path, page)
    return path
