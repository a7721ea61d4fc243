"""A candidate's recorded episode, played as an animation in the terminal.

Pixels are drawn by textual-image with the best method the terminal supports (Kitty graphics,
sixel, else coloured half blocks). Frames are decoded in a worker thread; a caption shows the
step and the reward's components at the frame on screen.
"""

from __future__ import annotations

import math

from textual import work
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import Static

from ..schemas import RolloutTrace
from .model import CandidateView

# textual-image asks the terminal what it supports when imported: this must happen before a
# Textual app owns the terminal, or the answer arrives as key presses (.terminal makes the
# question safe on terminals that report 0 columns or do not answer)
from .terminal import Image

MAX_TERMINAL_FPS = 12.5


class RolloutPlayer(Vertical):
    DEFAULT_CSS = """
    RolloutPlayer { height: auto; }
    RolloutPlayer #frame { width: 64; height: auto; max-height: 24; }
    RolloutPlayer #caption { height: 3; color: $text-muted; }
    """

    def __init__(self, **kwargs):
        super().__init__(**kwargs)
        self.candidate: CandidateView | None = None
        self.frames: list = []
        self.trace: RolloutTrace | None = None
        self.position = 0
        self.skip = 1
        self.playing = True
        self.timer: Timer | None = None

    def compose(self) -> ComposeResult:
        yield Image(id="frame")
        yield Static("", id="caption")

    def show(self, candidate: CandidateView) -> None:
        """Start loading ``candidate``'s episode; it plays once loaded."""
        self.candidate, self.frames, self.trace, self.position = candidate, [], None, 0
        if self.timer is not None:
            self.timer.stop()
            self.timer = None
        self.query_one("#frame").image = None  # type: ignore[attr-defined]
        if not candidate.gif.is_file():
            why = "no trained policy" if not candidate.rankable else "no video was recorded (see train.log)"
            self.query_one("#caption", Static).update(f"candidate {candidate.index}: {why}")
            return
        self.query_one("#caption", Static).update(f"candidate {candidate.index}: loading the episode ...")
        self._load(candidate)

    @work(thread=True, exclusive=True, group="rollout")
    def _load(self, candidate: CandidateView) -> None:
        from PIL import Image

        from ..video import read_gif

        try:
            frames, fps = read_gif(candidate.gif)
        except (OSError, ValueError) as exc:
            self.app.call_from_thread(self._failed, candidate, f"cannot read {candidate.gif.name}: {exc}")
            return
        images = [Image.fromarray(f) for f in frames]
        self.app.call_from_thread(self._loaded, candidate, images, fps, candidate.trace())

    def _failed(self, candidate: CandidateView, message: str) -> None:
        if candidate is self.candidate:
            self.query_one("#caption", Static).update(message)

    def _loaded(self, candidate: CandidateView, images: list, fps: float, trace: RolloutTrace | None) -> None:
        if candidate is not self.candidate or not images:  # the cursor moved on meanwhile
            return
        self.frames, self.trace, self.position = images, trace, 0
        self.skip = max(1, math.ceil(fps / MAX_TERMINAL_FPS))
        self.timer = self.set_interval(self.skip / fps, self._tick, pause=not self.playing)
        self._draw()

    def toggle(self) -> bool:
        """Pause or play; returns whether it now plays."""
        self.playing = not self.playing
        if self.timer is not None:
            (self.timer.resume if self.playing else self.timer.pause)()
        return self.playing

    def _tick(self) -> None:
        if self.frames:
            self.position = (self.position + self.skip) % len(self.frames)
            self._draw()

    def _draw(self) -> None:
        self.query_one("#frame").image = self.frames[self.position]  # type: ignore[attr-defined]
        self.query_one("#caption", Static).update(self.caption())

    def caption(self) -> str:
        trace, i = self.trace, self.position
        if trace is None or len(trace.frame_steps) != len(self.frames):
            return f"frame {i + 1}/{len(self.frames)}"
        step = trace.frame_steps[i]
        head = f"step {step}/{trace.steps} · return {trace.episode_return:.4g} · " \
               f"{'terminated' if trace.terminated else 'ran to the time limit'}"
        if step == 0:
            return head + "\n(start of the episode)"
        parts = [f"reward {trace.reward[step - 1]:.3g}"]
        parts += [f"{name} {values[step - 1]:.3g}" for name, values in trace.components.items()]
        return head + "\n" + " · ".join(parts)
