"""Training logs as TensorBoard event files, for people who use TensorBoard.

Written on the host from each candidate's checkpoints (``RUN/tensorboard/iter_XX-cand_YY``), so
``tensorboard --logdir RUN/tensorboard`` compares candidates side by side. Uses tensorboard's own
event writer, which needs neither torch nor TensorFlow.
"""

from __future__ import annotations

import time
from pathlib import Path

from .schemas import CandidateResult


def log_candidate(logdir: Path, result: CandidateResult) -> Path | None:
    """Write one candidate's reward components, fitness and episode lengths per checkpoint."""
    if not result.train or not result.train.checkpoints:
        return None
    try:
        from tensorboard.compat.proto import event_pb2, summary_pb2
        from tensorboard.summary.writer.event_file_writer import EventFileWriter
    except ImportError:  # tensorboard is optional at run time
        return None
    folder = logdir / f"iter_{result.iteration:02d}-cand_{result.index:02d}"
    folder.mkdir(parents=True, exist_ok=True)
    writer = EventFileWriter(str(folder))
    start = time.time() - result.train.wall_s
    for c in result.train.checkpoints:
        scalars = {"reward/total": c.reward.mean, **{f"reward/{k}": s.mean for k, s in c.components.items()},
                   "fitness/training_episodes": c.fitness, "fitness/evaluation": c.eval_fitness,
                   "episode/length": c.episode_length}
        values = [summary_pb2.Summary.Value(tag=tag, simple_value=float(v)) for tag, v in scalars.items()
                  if v is not None]
        writer.add_event(event_pb2.Event(wall_time=start + c.wall_s, step=c.step,
                                         summary=summary_pb2.Summary(value=values)))
    if result.fitness is not None:
        final = summary_pb2.Summary(value=[summary_pb2.Summary.Value(tag="fitness/final", simple_value=result.fitness)])
        writer.add_event(event_pb2.Event(wall_time=time.time(), step=result.train.env_steps, summary=final))
    writer.close()
    return folder
