"""Training a policy on a batched env with a reward function: PPO or SAC, picked by the settings.

The trainers are imported when called, so loading a task's settings (``train.config``) needs
no torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from .config import PPOConfig, SACConfig

if TYPE_CHECKING:
    from ..expressions import FitnessProgram
    from ..schemas import TrainCheckpoint
    from .common import RewardFn, TrainOutput
    from .policy import Policy


def train(env, reward_fn: RewardFn, config: PPOConfig | SACConfig, program: FitnessProgram | None = None,
          evaluate: Callable[[Policy], float] | None = None, success_threshold: float | None = None,
          on_checkpoint: Callable[[TrainCheckpoint, int], None] | None = None) -> TrainOutput:
    """Train with the algorithm ``config`` is for (see :func:`.ppo.train` and :func:`.sac.train`)."""
    if isinstance(config, SACConfig):
        from .sac import train as run
    elif isinstance(config, PPOConfig):
        from .ppo import train as run
    else:
        raise TypeError(f"no trainer for settings of type {type(config).__name__}")
    return run(env, reward_fn, config, program, evaluate=evaluate, success_threshold=success_threshold,
               on_checkpoint=on_checkpoint)
