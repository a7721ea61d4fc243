"""Off-screen drawing for env frames: world coordinates in, an RGB ``uint8`` array out.

A torch env draws itself by implementing ``draw(canvas, v)`` (see
:class:`~rewardsmith.envs.base.TorchVecEnv`): it picks the part of the world to show with
:meth:`Canvas.view` and draws shapes in world units (metres, y up). Drawing is done with Pillow at
twice the size and scaled down, which smooths the edges; no display is needed.

>>> canvas = Canvas(64, 48).view(center=(0.0, 0.0), width=4.0)
>>> canvas.line((-1, 0), (1, 0), width=0.1, color=(0, 0, 0)).circle((0, 0), 0.5, color=(200, 0, 0))
Canvas(64x48)
>>> canvas.array().shape, canvas.array().dtype.name
((48, 64, 3), 'uint8')
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from PIL import Image, ImageDraw, ImageFont

Color = tuple[int, int, int]
Point = tuple[float, float]

WHITE: Color = (255, 255, 255)
BLACK: Color = (0, 0, 0)
GREY: Color = (150, 150, 150)
BLUE: Color = (70, 110, 200)
ORANGE: Color = (202, 152, 101)
RED: Color = (200, 60, 60)
GREEN: Color = (60, 160, 90)

FRAME_SIZE = (320, 240)  # width, height of rendered frames; multiples of 16 suit video codecs
SUPERSAMPLE = 2


class Canvas:
    """An image of ``width`` x ``height`` pixels showing a window onto the world."""

    def __init__(self, width: int = FRAME_SIZE[0], height: int = FRAME_SIZE[1], background: Color = WHITE):
        self.width, self.height = width, height
        self.image = Image.new("RGB", (width * SUPERSAMPLE, height * SUPERSAMPLE), background)
        self.pen = ImageDraw.Draw(self.image)
        self.view()

    def __repr__(self) -> str:
        return f"Canvas({self.width}x{self.height})"

    def view(self, center: Point = (0.0, 0.0), width: float = 2.0) -> Canvas:
        """Show ``width`` world units across, centred on ``center``; the height follows the aspect."""
        self.scale = self.image.width / width  # pixels per world unit
        self.origin = (self.image.width / 2 - center[0] * self.scale, self.image.height / 2 + center[1] * self.scale)
        return self

    def px(self, p: Point) -> tuple[float, float]:
        return (self.origin[0] + p[0] * self.scale, self.origin[1] - p[1] * self.scale)

    def line(self, a: Point, b: Point, width: float, color: Color) -> Canvas:
        """A segment ``width`` world units thick, with round ends."""
        w = max(1, round(width * self.scale))
        self.pen.line([self.px(a), self.px(b)], fill=color, width=w)
        r = w / 2
        for p in (a, b):
            x, y = self.px(p)
            self.pen.ellipse([x - r, y - r, x + r, y + r], fill=color)
        return self

    def circle(self, center: Point, radius: float, color: Color) -> Canvas:
        x, y = self.px(center)
        r = max(1.0, radius * self.scale)
        self.pen.ellipse([x - r, y - r, x + r, y + r], fill=color)
        return self

    def rect(self, center: Point, size: tuple[float, float], color: Color, angle: float = 0.0) -> Canvas:
        """A ``size`` (width, height) rectangle around ``center``, turned ``angle`` radians anticlockwise."""
        hw, hh = size[0] / 2, size[1] / 2
        c, s = math.cos(angle), math.sin(angle)
        corners = [(center[0] + x * c - y * s, center[1] + x * s + y * c)
                   for x, y in ((-hw, -hh), (hw, -hh), (hw, hh), (-hw, hh))]
        return self.polygon(corners, color)

    def polygon(self, points: Sequence[Point], color: Color) -> Canvas:
        self.pen.polygon([self.px(p) for p in points], fill=color)
        return self

    def text(self, xy: tuple[int, int], text: str, color: Color = BLACK, size: int = 11) -> Canvas:
        """Text at pixel ``xy`` (top left, in output pixels), for labels."""
        font = ImageFont.load_default(size * SUPERSAMPLE)
        self.pen.text((xy[0] * SUPERSAMPLE, xy[1] * SUPERSAMPLE), text, fill=color, font=font)
        return self

    def array(self) -> np.ndarray:
        """The picture as ``(height, width, 3)`` ``uint8``."""
        small = self.image.reduce(SUPERSAMPLE)  # a box filter, ~3x faster than resize()
        return np.asarray(small, dtype=np.uint8)


def variables_panel(variables: Mapping[str, float], bounds: Mapping[str, tuple[float | None, float | None]],
                    title: str = "", size: tuple[int, int] = FRAME_SIZE) -> np.ndarray:
    """The default frame for envs that cannot draw themselves: one bar per scalar state variable.

    Each bar spans the variable's ``bounds`` (its range in the env description; ±1 around zero
    when unknown) and marks the current value.
    """
    canvas = Canvas(*size)
    names = list(variables)[:12]
    canvas.text((8, 4), title[:48], GREY)
    row = (size[1] - 24) / max(1, len(names))
    bar_x0, bar_x1 = size[0] * 0.42, size[0] - 10
    for i, name in enumerate(names):
        value = float(variables[name])
        low, high = bounds.get(name, (None, None))
        if low is None or high is None or not high > low:
            half = max(1.0, abs(value)) if math.isfinite(value) else 1.0
            low, high = -half, half
        y = 22 + i * row + row / 2
        canvas.text((8, int(y - 7)), f"{name[:14]} {value:+.2f}"[:22], BLACK)
        canvas.pen.rectangle(_box(bar_x0, y - 4, bar_x1, y + 4), fill=(230, 230, 230))
        frac = min(1.0, max(0.0, (value - low) / (high - low))) if math.isfinite(value) else 0.0
        zero = min(1.0, max(0.0, (0 - low) / (high - low)))
        a, b = sorted((bar_x0 + zero * (bar_x1 - bar_x0), bar_x0 + frac * (bar_x1 - bar_x0)))
        canvas.pen.rectangle(_box(a, y - 4, max(b, a + 1), y + 4), fill=BLUE)
    return canvas.array()


def _box(x0: float, y0: float, x1: float, y1: float) -> list[float]:
    return [x0 * SUPERSAMPLE, y0 * SUPERSAMPLE, x1 * SUPERSAMPLE, y1 * SUPERSAMPLE]
