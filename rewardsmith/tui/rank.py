"""``rewardsmith rank RUN``: a person watches an iteration's candidates and ranks them (ICPL).

The list shows each candidate's status, fitness (when the task has one) and reward components;
for the candidate under the cursor the right side plays its recorded episode and shows its
reward code, and the plot shows its components over training. ``b``/``w`` mark the best and
the worst, ``1``-``9`` give an optional full order, ``s`` saves the ranking into the run
directory and quits, ``q`` quits without saving. The app returns the saved :class:`Ranking`.

When a vision-language model ranked the iteration (``--feedback vlm``), its places are a column
of the list and its reason for the candidate under the cursor is shown beside it; ``a`` takes its
ranking as the start of the person's own. What the person submits is their ranking: it wins over
the model's.
"""

from __future__ import annotations

from pathlib import Path

from rich.syntax import Syntax
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.widgets import DataTable, Footer, Header, Static

from ..runs import RunDir
from ..schemas import Ranking
from .model import CandidateView, IterationView, Marks, load_iteration
from .player import RolloutPlayer


def _num(x: float | None) -> str:
    return "-" if x is None else f"{x:.3f}"


class RankApp(App[Ranking | None]):
    TITLE = "rewardsmith rank"
    CSS = """
    #left { width: 84; }
    #goal { height: auto; max-height: 4; padding: 0 1; color: $text-muted; }
    #candidates { height: auto; max-height: 16; }
    #marks { height: auto; padding: 0 1; color: $accent; }
    #vlm { height: auto; max-height: 6; padding: 0 1; color: $text-muted; }
    #curves { height: 1fr; min-height: 8; }
    #right { width: 1fr; padding: 0 1; }
    #code { height: 1fr; border: round $primary; }
    """
    BINDINGS = [
        Binding("b", "best", "Best"),
        Binding("w", "worst", "Worst"),
        Binding("1", "place(1)", "Order", key_display="1-9"),
        *(Binding(str(n), f"place({n})", show=False) for n in range(2, 10)),
        Binding("x", "clear", "Clear marks"),
        Binding("a", "adopt", "Take the VLM's ranking"),
        Binding("space", "play", "Play/pause"),
        Binding("v", "video", "Open video"),
        Binding("s", "submit", "Submit"),
        Binding("q", "quit_unsaved", "Quit (no save)"),
    ]

    def __init__(self, view: IterationView):
        super().__init__()
        self.view = view
        self.marks = Marks({c.index for c in view.candidates if c.rankable})
        self.by_index = {c.index: c for c in view.candidates}

    # -- layout --------------------------------------------------------------------------------
    def compose(self) -> ComposeResult:
        from textual_plotext import PlotextPlot

        yield Header()
        with Horizontal():
            with Vertical(id="left"):
                yield Static(f"Goal: {self.view.task.description}", id="goal")
                yield DataTable(id="candidates", cursor_type="row", zebra_stripes=True)
                yield Static("", id="marks")
                yield Static("", id="vlm")
                yield PlotextPlot(id="curves")
            with Vertical(id="right"):
                yield RolloutPlayer(id="rollout")
                with VerticalScroll(id="code"):
                    yield Static("", id="code-text")
        yield Footer()

    def on_mount(self) -> None:
        v = self.view
        self.sub_title = f"{v.task.name} · iteration {v.iteration + 1} · {len(v.candidates)} candidates"
        table = self.query_one(DataTable)
        table.add_column("mark", key="mark", width=10)
        table.add_column("cand", key="cand")
        table.add_column("status", key="status")
        if v.has_fitness:
            table.add_column("fitness", key="fitness")
        if v.vlm is not None:
            table.add_column("VLM", key="vlm", width=8)
        table.add_column("components (mean, end of training)", key="components")
        for c in v.candidates:
            row = [self.marks.label(c.index), str(c.index), c.status]
            if v.has_fitness:
                row.append(_num(c.fitness))
            if v.vlm is not None:
                row.append(v.vlm_label(c.index))
            row.append("  ".join(f"{k} {m:.3g}" for k, m in c.component_means().items()) or (
                (c.result.reason or "")[:40] if c.result else ""))
            table.add_row(*row, key=str(c.index))
        table.focus()
        self._update_marks()
        if v.candidates:
            self.show_candidate(v.candidates[0])

    # -- the candidate under the cursor --------------------------------------------------------
    @property
    def current(self) -> CandidateView | None:
        table = self.query_one(DataTable)
        if not self.view.candidates:
            return None
        return self.view.candidates[min(table.cursor_row, len(self.view.candidates) - 1)]

    def on_data_table_row_highlighted(self, event: DataTable.RowHighlighted) -> None:
        self.show_candidate(self.by_index[int(str(event.row_key.value))])

    def show_candidate(self, candidate: CandidateView) -> None:
        player = self.query_one(RolloutPlayer)
        if player.candidate is candidate:
            return
        player.show(candidate)
        code = candidate.code or "# no reward code"
        self.query_one("#code", VerticalScroll).border_title = f"candidate {candidate.index}: reward code"
        self.query_one("#code-text", Static).update(
            Syntax(code, "python", theme="ansi_dark", line_numbers=True, background_color="default"))
        self._plot(candidate)
        self._show_vlm(candidate)

    def _show_vlm(self, candidate: CandidateView) -> None:
        vlm = self.view.vlm
        if vlm is None:
            return
        order = " > ".join(map(str, vlm.order or [vlm.best, *([vlm.worst] if vlm.worst is not None else [])]))
        reason = vlm.reasons.get(candidate.index, "(no reason given)")
        self.query_one("#vlm", Static).update(
            f"VLM {vlm.model or ''}: {order} (a: take it as yours)\ncandidate {candidate.index}: {reason}")

    def _plot(self, candidate: CandidateView) -> None:
        from textual_plotext import PlotextPlot

        widget = self.query_one(PlotextPlot)
        plt = widget.plt
        plt.clear_figure()
        steps, series = candidate.curves()
        plt.title(f"candidate {candidate.index}: reward components over training")
        if steps:
            for name, values in series.items():
                plt.plot(steps, values, label=name, marker="braille")
            plt.xlabel("env steps")
        widget.refresh()

    # -- marks ---------------------------------------------------------------------------------
    def _mark(self, change) -> None:
        candidate = self.current
        if candidate is None:
            return
        try:
            change(candidate.index)
        except ValueError as exc:
            self.notify(str(exc), severity="warning")
            return
        table = self.query_one(DataTable)
        for c in self.view.candidates:
            table.update_cell(str(c.index), "mark", self.marks.label(c.index))
        self._update_marks()

    def _update_marks(self) -> None:
        m = self.marks
        order = sorted(m.ranks, key=m.ranks.__getitem__)
        text = f"best: {_opt(m.best)} · worst: {_opt(m.worst)}"
        if order:
            text += " · order: " + " > ".join(map(str, order))
        if self.view.previous is not None:
            p = self.view.previous
            text += f"\n(already ranked at {p.time}: best {p.best}, worst {_opt(p.worst)}; submitting adds a new ranking)"
        elif self.view.vlm is not None:
            text += "\n(ranked by the VLM; the ranking you submit overrules it)"
        self.query_one("#marks", Static).update(text)

    def action_best(self) -> None:
        self._mark(self.marks.mark_best)

    def action_worst(self) -> None:
        self._mark(self.marks.mark_worst)

    def action_place(self, place: int) -> None:
        self._mark(lambda i: self.marks.set_rank(i, place))

    def action_clear(self) -> None:
        self._mark(self.marks.clear)

    def action_adopt(self) -> None:
        vlm = self.view.vlm
        if vlm is None:
            self.notify("no VLM ranked this iteration", severity="warning")
            return
        self._mark(lambda _: self.marks.adopt(vlm))

    # -- other keys ----------------------------------------------------------------------------
    def action_play(self) -> None:
        self.query_one(RolloutPlayer).toggle()

    def action_video(self) -> None:
        from ..video import open_in_viewer

        candidate = self.current
        if candidate is not None:
            problem = open_in_viewer(candidate.mp4)
            self.notify(problem or f"opened {candidate.mp4}", severity="warning" if problem else "information")

    def action_submit(self) -> None:
        try:
            ranking = self.marks.ranking(self.view.iteration)
        except ValueError as exc:
            self.notify(str(exc), severity="warning")
            return
        RunDir(self.view.run_path).save_ranking(ranking)
        self.exit(ranking)

    def action_quit_unsaved(self) -> None:
        self.exit(None)


def _opt(x: int | None) -> str:
    return "-" if x is None else str(x)


def rank_iteration(run_path: Path, iteration: int | None = None) -> Ranking | None:
    """Open the app on ``iteration`` (default: the latest) of a run; the saved ranking, or None."""
    return RankApp(load_iteration(Path(run_path), iteration)).run()
