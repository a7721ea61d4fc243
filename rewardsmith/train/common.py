"""What the trainers share: their output, the reward statistics over training (Eureka's reward
reflection) and the checkpoint record that carries them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from ..fitness import FitnessTracker
from ..schemas import Stats, TrainCheckpoint, TrainLog
from .policy import Policy

if TYPE_CHECKING:
    from .sac import Experience

RewardFn = Callable[[dict, torch.Tensor], tuple[torch.Tensor, dict[str, torch.Tensor]]]


@dataclass
class TrainOutput:
    policy: Policy
    log: TrainLog
    experience: Experience | None = None  # SAC, when asked: the transitions it collected


class RewardStats:
    """Mean/std/min/max of the total reward and each component.

    Each step's values are copied into a rollout buffer of shape ``(num_steps, 1 + C, num_envs)``
    (one op per step); statistics are folded in once per rollout, on the device.
    """

    def __init__(self, num_steps: int, num_envs: int, device: torch.device):
        self.shape, self.device = (num_steps, num_envs), device
        self.names: list[str] | None = None
        self.nonfinite = torch.zeros((), dtype=torch.long, device=device)

    def _reset(self) -> None:
        assert self.names is not None
        size = 1 + len(self.names)
        z = lambda fill: torch.full((size,), fill, dtype=torch.float64, device=self.device)  # noqa: E731
        self.sum, self.sq, self.min, self.max = z(0.0), z(0.0), z(float("inf")), z(float("-inf"))
        self.count = 0

    def record(self, t: int, total: torch.Tensor, components: dict[str, torch.Tensor]) -> None:
        if self.names is None:
            self.names = list(components)
            self.buffer = torch.zeros((self.shape[0], 1 + len(self.names), self.shape[1]), device=self.device)
            self._reset()
        torch.stack([total, *components.values()], out=self.buffer[t])

    def fold(self, steps: int | None = None) -> torch.Tensor:
        """Add this rollout (its first ``steps`` steps) to the running statistics; return its
        totals with NaN/inf as 0."""
        x = self.buffer[:steps].double()
        finite = torch.isfinite(x)
        self.nonfinite += (~finite[:, 0]).sum()
        x = torch.where(finite, x, 0.0)
        self.sum += x.sum((0, 2))
        self.sq += x.square().sum((0, 2))
        self.min = torch.minimum(self.min, x.amin((0, 2)))
        self.max = torch.maximum(self.max, x.amax((0, 2)))
        self.count += x.shape[0] * x.shape[2]
        return x[:, 0].to(self.buffer.dtype)

    def pop(self) -> tuple[Stats, dict[str, Stats]]:
        if self.names is None or self.count == 0:
            zero = Stats(mean=0.0, std=0.0, min=0.0, max=0.0)
            return zero, {}
        mean = self.sum / self.count
        std = torch.sqrt(torch.clamp(self.sq / self.count - mean.square(), min=0.0))
        rows = torch.stack([mean, std, self.min, self.max], 1).tolist()
        self._reset()
        stats = [Stats(mean=r[0], std=r[1], min=r[2], max=r[3]) for r in rows]
        return stats[0], dict(zip(self.names, stats[1:]))


def checkpoint_record(step: int, start: float, stats: RewardStats, tracker: FitnessTracker | None,
                      eval_fitness: float | None, diagnostics: dict[str, float] | None = None) -> TrainCheckpoint:
    """The statistics since the previous checkpoint (and clears them)."""
    reward, components = stats.pop()
    episodes = tracker.pop_interval() if tracker is not None else {"episodes": 0}
    return TrainCheckpoint(step=step, wall_s=time.perf_counter() - start, reward=reward,
                           components=components, eval_fitness=eval_fitness, diagnostics=diagnostics or {},
                           **episodes)


def keep_checkpoint(checkpoints: list[TrainCheckpoint], checkpoint: TrainCheckpoint, stats: RewardStats,
                    step: int, on_checkpoint, total_timesteps: int) -> None:
    """Keep ``checkpoint``, stop the training if the reward was ever NaN or infinite, and tell
    ``on_checkpoint`` (the progress line)."""
    checkpoints.append(checkpoint)
    if int(stats.nonfinite):
        from ..errors import RewardCodeError

        raise RewardCodeError(f"the reward was NaN or infinite {int(stats.nonfinite)} times in the first {step} steps")
    if on_checkpoint is not None:
        on_checkpoint(checkpoint, total_timesteps)
