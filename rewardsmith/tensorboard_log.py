"""Training logs as TensorBoard event files, for people who use TensorBoard.

Written on the host from each candidate's checkpoints (``RUN/tensorboard/iter_XX-cand_YY``), so
``tensorboard --logdir RUN/tensorboard`` compares candidates side by side. Uses tensorboard's own
record format, which needs neither torch nor TensorFlow. Each file is written whole and
atomically (no writer thread that could fail on its own, e.g. on a full disk).
"""

from __future__ import annotations

import io
import socket
import threading
import time
from pathlib import Path

from .runs import atomic_write_bytes
from .schemas import CandidateResult


def warm_up() -> None:
    """Import tensorboard's writer in the background (most of a second) while a job runs, so
    logging the result does not add that to the wall time."""
    threading.Thread(target=_import_writer, daemon=True, name="tensorboard-import").start()


def _import_writer() -> None:
    try:
        from tensorboard.compat.proto import event_pb2, summary_pb2  # noqa: F401
        from tensorboard.summary.writer.record_writer import RecordWriter  # noqa: F401
    except ImportError:
        pass


def log_candidate(logdir: Path, result: CandidateResult) -> Path | None:
    """Write one candidate's reward components, fitness and episode lengths per checkpoint."""
    if not result.train or not result.train.checkpoints:
        return None
    try:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.summary.writer.record_writer import RecordWriter
    except ImportError:  # tensorboard is optional at run time
        return None
    folder = logdir / f"iter_{result.iteration:02d}-cand_{result.index:02d}"
    buffer = io.BytesIO()
    records = RecordWriter(buffer)
    records.write(event_pb2.Event(wall_time=time.time(), file_version="brain.Event:2").SerializeToString())
    start = time.time() - result.train.wall_s
    for c in result.train.checkpoints:
        scalars = {"reward/total": c.reward.mean, **{f"reward/{k}": s.mean for k, s in c.components.items()},
                   "fitness/training_episodes": c.fitness, "fitness/evaluation": c.eval_fitness,
                   "episode/length": c.episode_length, **{f"losses/{k}": v for k, v in c.diagnostics.items()}}
        values = [summary_pb2.Summary.Value(tag=tag, simple_value=float(v)) for tag, v in scalars.items()
                  if v is not None]
        event = event_pb2.Event(wall_time=start + c.wall_s, step=c.step, summary=summary_pb2.Summary(value=values))
        records.write(event.SerializeToString())
    ends = {"fitness/final": result.fitness}
    if result.train.reused_transitions or result.train.shared_transitions:  # SAC with other candidates' experience
        ends.update({"reuse/transitions": result.train.reused_transitions,
                     "reuse/shared_transitions": result.train.shared_transitions,
                     "reuse/share": result.train.reused_share})
    if any(v is not None for v in ends.values()):
        final = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag=tag, simple_value=float(v))
                                           for tag, v in ends.items() if v is not None])
        event = event_pb2.Event(wall_time=time.time(), step=result.train.env_steps, summary=final)
        records.write(event.SerializeToString())
    for old in folder.glob("events.out.tfevents.*"):  # a candidate redone after a crash: log it afresh
        old.unlink()
    atomic_write_bytes(folder / f"events.out.tfevents.{int(time.time())}.{socket.gethostname()}", buffer.getvalue())
    return folder
