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
    from .policy import ActorCritic, Policy
    from .sac import Experience


def train(env, reward_fn: RewardFn, config: PPOConfig | SACConfig, program: FitnessProgram | None = None,
          evaluate: Callable[[Policy], float] | None = None, success_threshold: float | None = None,
          on_checkpoint: Callable[[TrainCheckpoint, int], None] | None = None,
          experience: Experience | None = None, keep_experience: bool = False,
          initial: ActorCritic | None = None, share=None) -> TrainOutput:
    """Train with the algorithm ``config`` is for (see :func:`.ppo.train` and :func:`.sac.train`).

    ``experience``, ``keep_experience`` (reusing transitions across runs) and ``share`` (live
    sharing with runs training at the same time) are for SAC only;
    ``initial`` (a warm start from another reward's policy) for PPO only.
    """
    if isinstance(config, SACConfig):
        if initial is not None:
            raise ValueError("a warm start (train.init: best) is for PPO only")
        from .sac import train as sac

        return sac(env, reward_fn, config, program, evaluate=evaluate, success_threshold=success_threshold,
                   on_checkpoint=on_checkpoint, experience=experience, keep_experience=keep_experience,
                   share=share)
    if not isinstance(config, PPOConfig):
        raise TypeError(f"no trainer for settings of type {type(config).__name__}")
    if experience is not None or keep_experience or share is not None:
        raise ValueError("reusing experience needs an off-policy learner: train.algorithm: sac")
    from .ppo import train as ppo

    return ppo(env, reward_fn, config, program, evaluate=evaluate, success_threshold=success_threshold,
               on_checkpoint=on_checkpoint, initial=initial)
