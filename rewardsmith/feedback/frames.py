"""A contact sheet of a recorded episode: a few frames of ``rollout.gif`` in one small image.

A vision-language model is shown one sheet per candidate: ``frames`` moments spread evenly over
the episode (the first and the last among them), numbered in reading order with the time each
shows, under a title bar. One image per candidate keeps the request small: providers charge per
image tile, so a 768-pixel-wide PNG costs about as much as one frame at that size would.

>>> sample_positions(100, 4)
[0, 33, 66, 99]
>>> sample_positions(3, 6)
[0, 1, 2]
"""

from __future__ import annotations

import io
import math
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from ..runners.protocol import TRACE_FILE
from ..schemas import RolloutTrace
from ..video import GIF

SHEET_WIDTH = 768
TITLE_HEIGHT = 22
GAP = 4


@dataclass(frozen=True)
class ContactSheet:
    png: bytes
    width: int
    height: int
    steps: list[int]  # the episode step each tile shows, in reading order


def sample_positions(count: int, wanted: int) -> list[int]:
    """``wanted`` positions spread evenly over ``count`` frames, the first and the last included."""
    if count <= wanted:
        return list(range(count))
    if wanted == 1:
        return [count - 1]
    return [round(i * (count - 1) / (wanted - 1)) for i in range(wanted)]


def _gif_frames(path: Path, wanted: int):
    """``wanted`` RGB images spread over the frames that were written into the GIF (a GIF writer
    merges identical neighbours into one longer frame; they count as the frames they were), their
    positions, and how many frames were written."""
    from PIL import Image, ImageSequence

    with Image.open(path) as image:
        durations = [int(frame.info.get("duration") or 100) for frame in ImageSequence.Iterator(image)]
        base = max(10, min(durations))
        written = [i for i, d in enumerate(durations) for _ in range(max(1, round(d / base)))]
        positions = sample_positions(len(written), wanted)
        out = []
        for position in positions:
            image.seek(written[position])
            out.append(image.convert("RGB"))
    return out, positions, len(written)


def _trace(folder: Path) -> RolloutTrace | None:
    path = folder / TRACE_FILE
    try:
        return RolloutTrace.model_validate_json(path.read_text()) if path.is_file() else None
    except (ValidationError, ValueError, OSError):
        return None


def contact_sheet(folder: Path, title: str, frames: int = 6, width: int = SHEET_WIDTH) -> ContactSheet | None:
    """The sheet of the episode recorded in ``folder`` (``rollout.gif``, with ``rollout.json``
    for the time of each frame), or ``None`` when there is no readable recording."""
    from PIL import Image, ImageDraw, ImageFont

    gif = folder / GIF
    if not gif.is_file():
        return None
    trace = _trace(folder)
    try:
        images, positions, written = _gif_frames(gif, frames)
    except (OSError, ValueError, EOFError):
        return None
    frame_steps = trace.frame_steps if trace and len(trace.frame_steps) == written else list(range(written))
    steps = [frame_steps[p] for p in positions]
    columns = 1 if len(images) == 1 else 2 if len(images) <= 4 else 3
    rows = math.ceil(len(images) / columns)
    tile_w = (width - GAP * (columns + 1)) // columns
    tile_h = max(16, round(tile_w * images[0].height / images[0].width))
    sheet = Image.new("RGB", (width, TITLE_HEIGHT + GAP + rows * (tile_h + GAP)), (32, 32, 32))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=14)
    draw.text((GAP + 2, 3), title, fill=(255, 255, 255), font=font)
    dt = trace.dt if trace else None
    last = len(images) - 1
    for n, (image, step) in enumerate(zip(images, steps)):
        x = GAP + (n % columns) * (tile_w + GAP)
        y = TITLE_HEIGHT + GAP + (n // columns) * (tile_h + GAP)
        sheet.paste(image.resize((tile_w, tile_h), Image.Resampling.LANCZOS), (x, y))
        when = f"t={step * dt:.2f} s" if dt else f"step {step}"
        if n == last and trace is not None:
            when += " (end, before the time limit)" if trace.terminated else " (end)"
        label = f"{n + 1}: {when}"
        box = draw.textbbox((x + 3, y + 2), label, font=font)
        draw.rectangle((box[0] - 2, box[1] - 1, box[2] + 2, box[3] + 1), fill=(0, 0, 0))
        draw.text((x + 3, y + 2), label, fill=(255, 255, 160), font=font)
    buffer = io.BytesIO()
    sheet.save(buffer, format="PNG", optimize=True)
    return ContactSheet(buffer.getvalue(), sheet.width, sheet.height, steps)

