"""Turn a trained candidate into feedback a designer can act on (Eureka's reward reflection).

It reports per-component statistics at the logging checkpoints, the fitness curve, episode
lengths and why episodes ended, and flags components that are constant, that dominate the
total, or that rise while the task fitness does not (a sign of reward hacking).
"""

from __future__ import annotations

from ..schemas import Analysis, EvalSummary, Finding, TrainLog

CONSTANT_REL_SPREAD = 0.01
DOMINATING_SHARE = 0.8
RISE_FRACTION = 0.1


def _fmt(x: float | None) -> str:
    if x is None:
        return "-"
    return f"{x:.3g}" if abs(x) < 1e4 else f"{x:.3e}"


def find_issues(log: TrainLog | None, ev: EvalSummary | None, success_threshold: float) -> list[Finding]:
    if log is None or not log.checkpoints:
        return []
    findings: list[Finding] = []
    last = log.checkpoints[-1]
    names = list(last.components)
    solved = ev is not None and ev.success
    fitness_curve = [c.fitness for c in log.checkpoints if c.fitness is not None]
    fitness_rise = (fitness_curve[-1] - fitness_curve[0]) if len(fitness_curve) >= 2 else 0.0
    fitness_scale = max(abs(success_threshold), 1e-6)

    for name in names:
        means = [c.components[name].mean for c in log.checkpoints if name in c.components]
        stat = last.components[name]
        spread = max(stat.std, max(means) - min(means))
        if spread <= CONSTANT_REL_SPREAD * (abs(stat.mean) + 1e-6):
            findings.append(Finding(kind="constant", component=name, detail=(
                f"'{name}' is nearly constant ({_fmt(stat.mean)} ± {_fmt(stat.std)}): it gives the "
                "policy no signal; make it sharper (smaller scale) or drop it")))
        if len(means) >= 2 and not solved:
            scale = max(abs(m) for m in means) + stat.std + 1e-9
            if (means[-1] - means[0]) / scale >= RISE_FRACTION and fitness_rise <= 0.05 * fitness_scale:
                findings.append(Finding(kind="rising_without_fitness", component=name, detail=(
                    f"'{name}' rose from {_fmt(means[0])} to {_fmt(means[-1])} while the task fitness "
                    f"did not improve: the policy may be exploiting it; weaken or rethink it")))

    if len(names) >= 2:
        total = sum(abs(last.components[n].mean) for n in names) or 1.0
        for name in names:
            share = abs(last.components[name].mean) / total
            if share >= DOMINATING_SHARE:
                findings.append(Finding(kind="dominating", component=name, detail=(
                    f"'{name}' is {share:.0%} of the reward's magnitude; the other components hardly "
                    "matter; scale it down")))

    if log.nonfinite_rewards:
        findings.append(Finding(kind="nonfinite", detail=f"the reward was NaN/inf {log.nonfinite_rewards} times"))
    if not solved and len(fitness_curve) >= 2 and abs(fitness_rise) <= 0.02 * fitness_scale:
        findings.append(Finding(kind="no_progress", detail=(
            f"task fitness stayed at {_fmt(fitness_curve[-1])} during training: the reward does not lead "
            "the policy towards the goal")))
    return findings


FITNESS_FINDINGS = ("rising_without_fitness", "no_progress")  # these quote the task fitness


def analyze(log: TrainLog | None, ev: EvalSummary | None, success_threshold: float,
            status: str = "ok", reason: str | None = None) -> Analysis:
    """Findings plus a plain-text report of one candidate."""
    findings = find_issues(log, ev, success_threshold)
    return Analysis(findings=findings, text=describe(log, ev, findings, success_threshold, status, reason))


def describe(log: TrainLog | None, ev: EvalSummary | None, findings: list[Finding], success_threshold: float,
             status: str = "ok", reason: str | None = None, show_fitness: bool = True, timings: bool = True) -> str:
    """The report as text; ``show_fitness=False`` leaves out every number that comes from the task
    fitness (for preference feedback, where a person judged without seeing it); ``timings=False``
    leaves out wall-clock times (prompts stay identical across re-runs, so cached answers apply)."""
    lines: list[str] = []
    if status != "ok":
        lines.append(f"Status: {status}. Reason: {reason}")
    if ev is not None and show_fitness:
        verdict = "solved" if ev.success else "not solved"
        lines.append(f"Task fitness on {ev.episodes} evaluation episodes: {_fmt(ev.fitness)} "
                     f"(success threshold {_fmt(success_threshold)}; {verdict}).")
    if ev is not None:
        reasons = ", ".join(f"{k} {v}" for k, v in sorted(ev.terminations.items(), key=lambda kv: -kv[1]))
        lines.append(f"Evaluation episode length: mean {_fmt(ev.episode_length.mean)} (min "
                     f"{_fmt(ev.episode_length.min)}, max {_fmt(ev.episode_length.max)}); ended by: {reasons}.")
        if ev.variables:
            lines.append("What the policy did (state variables over evaluation episodes, mean [min, max]):")
            lines.append("  " + "; ".join(f"{k} {_fmt(s.mean)} [{_fmt(s.min)}, {_fmt(s.max)}]"
                                          for k, s in ev.variables.items()))
    if log is not None and log.checkpoints:
        cps = log.checkpoints
        early = ", stopped early at the success threshold" if log.stopped_early and show_fitness else ""
        took = f" in {log.wall_s:.1f} s" if timings else ""
        lines.append(f"Training: {log.env_steps} env steps{took}{early}. "
                     f"Values at {len(cps)} checkpoints (mean over the steps since the previous one):")
        width = max([len(n) for n in cps[-1].components] + [len("task fitness")])
        for name in cps[-1].components:
            series = " ".join(_fmt(c.components[name].mean) for c in cps if name in c.components)
            s = cps[-1].components[name]
            lines.append(f"  {name:<{width}}  {series}   (last: std {_fmt(s.std)}, min {_fmt(s.min)}, max {_fmt(s.max)})")
        lines.append(f"  {'total reward':<{width}}  " + " ".join(_fmt(c.reward.mean) for c in cps))
        if show_fitness:
            lines.append(f"  {'task fitness':<{width}}  " + " ".join(_fmt(c.fitness) for c in cps))
        lines.append(f"  {'episode length':<{width}}  " + " ".join(_fmt(c.episode_length) for c in cps))
        ends: dict[str, int] = {}
        for c in cps:
            for k, v in c.terminations.items():
                ends[k] = ends.get(k, 0) + v
        if ends:
            lines.append("Training episodes ended by: " + ", ".join(
                f"{k} {v}" for k, v in sorted(ends.items(), key=lambda kv: -kv[1])))
    if not show_fitness:
        findings = [f for f in findings if f.kind not in FITNESS_FINDINGS]
    if findings:
        lines.append("Findings:")
        lines.extend(f"- {f.detail}" for f in findings)
    return "\n".join(lines)
