"""Progress on screen with rich: one bar per candidate, a line per finished candidate."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager

from rich.console import Console
from rich.markup import escape
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from .schemas import Candidate, CandidateResult, IterationRecord


def _fit(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


def dollars(amount: float) -> str:
    """``$0.0123``; amounts under a cent keep two significant digits (``$0.00017``)."""
    return f"${amount:.4f}" if amount >= 0.01 or amount == 0 else f"${amount:.2g}"


class RichReporter:
    """Live bars while candidates train; a summary line as each one ends."""

    def __init__(self, console: Console | None = None):
        self.console = console or Console(stderr=True)
        self.progress = Progress(
            TextColumn("{task.description}"), BarColumn(bar_width=28),
            TextColumn("{task.completed:>9,.0f}/{task.total:,.0f} steps"),
            TextColumn("fitness {task.fields[fitness]}"), TimeElapsedColumn(),
            console=self.console, transient=True)
        self.rows: dict[tuple[int, int], TaskID] = {}
        self.lock = threading.Lock()

    def __enter__(self) -> RichReporter:
        self._start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop()

    # live bars only on a terminal: in a pipe or a file they would add blank lines, nothing else
    def _start(self) -> None:
        if self.console.is_terminal:
            self.progress.start()

    def _stop(self) -> None:
        if self.console.is_terminal:
            self.progress.stop()

    def iteration_started(self, iteration: int, iterations: int, candidates: list[Candidate]) -> None:
        self.console.rule(f"iteration {iteration + 1}/{iterations} · {len(candidates)} candidates")

    def candidate_started(self, candidate: Candidate, total_steps: int) -> None:
        with self.lock:
            self.rows[(candidate.iteration, candidate.index)] = self.progress.add_task(
                f"  candidate {candidate.index}", total=total_steps, fitness="-")

    def candidate_progress(self, candidate: Candidate, payload: dict) -> None:
        row = self.rows.get((candidate.iteration, candidate.index))
        if row is None:
            return
        fitness = payload.get("eval_fitness")
        if fitness is None:
            fitness = payload.get("fitness")
        step = payload.get("step")
        if isinstance(step, (int, float)):
            self.progress.update(row, completed=step, fitness=_fit(fitness) if isinstance(fitness, (int, float)) else "-")

    def candidate_finished(self, result: CandidateResult, resumed: bool = False) -> None:
        with self.lock:
            row = self.rows.pop((result.iteration, result.index), None)
            if row is not None:
                self.progress.remove_task(row)
        tag = " (from the earlier session)" if resumed else ""
        if result.status == "ok":
            mark = "[green]solved[/]" if result.success else "[yellow]not solved[/]"
            steps = result.train.env_steps if result.train else 0
            reused = result.train.reused_transitions + result.train.shared_transitions if result.train else 0
            reuse = f" · {reused:,} reused ({result.train.reused_share:.0%} of samples)" if result.train and reused else ""
            self.console.print(f"  candidate {result.index}: fitness {_fit(result.fitness)} {mark} · "
                               f"{steps:,} steps{reuse} · {result.wall_s:.1f} s{tag}")
        else:
            self.console.print(f"  candidate {result.index}: [red]{result.status}[/] - "
                               f"{escape(str(result.reason))}{tag}", highlight=False)

    def iteration_finished(self, record: IterationRecord) -> None:
        fb = record.feedback
        if fb and fb.best is not None:
            best = next(c for c in record.candidates if c.index == fb.best)
            by = {"vlm": " (the VLM's choice)", "human": " (a person's choice)"}.get(fb.kind, "")
            self.console.print(f"  best of iteration {record.iteration + 1}{by}: candidate {fb.best} "
                               f"(fitness {_fit(best.fitness)})")
            if fb.best in fb.reasons:
                self.console.print(f"    {escape(fb.reasons[fb.best])}", highlight=False)

    @contextmanager
    def paused(self) -> Iterator[None]:
        """No live display meanwhile (a full-screen app may take over the terminal)."""
        self._stop()
        try:
            yield
        finally:
            self._start()

    def message(self, text: str) -> None:
        self.console.print(text, soft_wrap=True)
