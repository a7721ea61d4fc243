"""Videos of a recorded episode: MP4 (imageio's bundled ffmpeg) and GIF, encoded on the host.

The training job hands over raw pixels (``frames.npy``), never a video file: the host checks the
array and encodes it itself, so a file the user opens in a video player was made by rewardsmith,
not by reward code.
"""

from __future__ import annotations

import io
import os
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # numpy is imported when needed: the CLI starts faster without it
    import numpy as np

MP4 = "rollout.mp4"
GIF = "rollout.gif"
MAX_FRAMES = 1000
MAX_SIDE = 1024


def load_frames(raw: bytes) -> np.ndarray:
    """Parse an untrusted ``.npy`` of frames: ``(n, height, width, 3)`` ``uint8``, bounded sizes."""
    import numpy as np

    if not raw:
        raise ValueError("no frames")
    frames = np.load(io.BytesIO(raw), allow_pickle=False)
    if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[3] != 3:
        raise ValueError(f"frames must be (n, height, width, 3) uint8, got {frames.dtype} {frames.shape}")
    n, h, w, _ = frames.shape
    if not (1 <= n <= MAX_FRAMES and 16 <= h <= MAX_SIDE and 16 <= w <= MAX_SIDE):
        raise ValueError(f"frames of shape {frames.shape} are out of bounds")
    return frames


def encode_videos(frames: np.ndarray, fps: float, folder: Path) -> list[Path]:
    """Write ``rollout.mp4`` and ``rollout.gif`` into ``folder``; returns the files written.

    The GIF is made in a thread while ffmpeg (another process) encodes the MP4."""
    folder.mkdir(parents=True, exist_ok=True)
    mp4, gif = folder / MP4, folder / GIF
    with ThreadPoolExecutor(1) as pool:
        gif_done = pool.submit(_write_gif, frames, fps, gif)
        _write_mp4(frames, fps, mp4)
        gif_done.result()
    return [mp4, gif]


def _write_mp4(frames: np.ndarray, fps: float, path: Path) -> None:
    import imageio.v2 as imageio

    # x264's veryfast preset: a third less of a core than its default for the same size here
    with imageio.get_writer(path, format="FFMPEG", mode="I", fps=fps, codec="libx264", quality=5,
                            pixelformat="yuv420p", macro_block_size=16, ffmpeg_log_level="error",
                            output_params=["-preset", "veryfast"]) as writer:
        for frame in frames:
            writer.append_data(frame)  # type: ignore[attr-defined]


def _write_gif(frames: np.ndarray, fps: float, path: Path) -> None:
    import numpy as np
    from PIL import Image

    # GIF frame times are in whole hundredths of a second. One palette for the whole clip, made
    # from a few frames side by side: ~3x faster than a palette per frame, and no flicker. Not
    # optimized: Pillow's search for what changed between frames took 60 of 100 ms (100 frames,
    # 320x240); the file is larger (100 KB instead of 35 KB for CartPole), the frames the same.
    duration = max(20, round(100 / fps) * 10)
    sample = np.concatenate(list(frames[::max(1, len(frames) // 8)][:8]), axis=0)
    palette = Image.fromarray(sample).quantize(255, method=Image.Quantize.FASTOCTREE)
    images = [Image.fromarray(f).quantize(palette=palette, dither=Image.Dither.NONE) for f in frames]
    images[0].save(path, save_all=True, append_images=images[1:], duration=duration, loop=0, optimize=False)


def read_gif(path: Path) -> tuple[list[np.ndarray], float]:
    """Frames of a GIF as RGB arrays, and its frames per second.

    A GIF writer merges identical neighbouring frames into one longer frame; they are expanded
    again, so frame ``i`` is the ``i``-th frame that was written.
    """
    import numpy as np
    from PIL import Image, ImageSequence

    with Image.open(path) as image:
        pairs = [(np.asarray(f.convert("RGB")), int(f.info.get("duration") or 100))
                 for f in ImageSequence.Iterator(image)]
    base = max(10, min(d for _, d in pairs))
    frames = [frame for frame, duration in pairs for _ in range(max(1, round(duration / base)))]
    return frames, 1000.0 / base


def open_in_viewer(path: Path) -> str | None:
    """Open ``path`` in the desktop's viewer (``xdg-open`` or ``open``); the reason when we cannot."""
    if not path.is_file():
        return f"{path} does not exist"
    if sys.platform == "darwin":
        opener = shutil.which("open")
    else:
        opener = shutil.which("xdg-open")
        if opener and not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY")):
            return f"no display to open it on; the video is {path}"
    if opener is None:
        return f"no system viewer (xdg-open) here; the video is {path}"
    subprocess.Popen([opener, str(path)], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                     stderr=subprocess.DEVNULL, start_new_session=True)
    return None
