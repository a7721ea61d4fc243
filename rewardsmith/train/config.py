"""Trainer settings: the ``train`` section of a task file. One flat record per algorithm, one
description per field; ``algorithm`` picks the record (PPO when it is left out, so task files
written before SAC existed load unchanged).

Fields both algorithms have carry the same names: ``total_timesteps``, ``seed``,
``learning_rate``, ``gamma``, ``hidden_sizes``, ``normalize_obs``, ``early_stop``,
``eval_every``, ``checkpoints``.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, model_validator

ALGORITHMS = ("ppo", "sac")


class PPOConfig(BaseModel):
    """Proximal Policy Optimization settings (defaults suit small control tasks on a CPU)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    algorithm: Literal["ppo"] = Field("ppo", description="ppo (on-policy; discrete or continuous actions)")
    total_timesteps: int = Field(300_000, ge=1, description="env steps to train for (all envs together)")
    seed: int = Field(0, description="seed for the env, the policy initialisation and sampling")
    num_steps: int = Field(32, ge=1, description="steps per env in each rollout")
    learning_rate: float = Field(1e-3, gt=0, description="Adam step size")
    anneal_lr: bool = Field(True, description="decay the learning rate linearly to 0")
    gamma: float = Field(0.99, gt=0, le=1, description="discount factor")
    gae_lambda: float = Field(0.95, ge=0, le=1, description="GAE lambda")
    update_epochs: int = Field(4, ge=1, description="passes over each rollout")
    num_minibatches: int = Field(4, ge=1, description="minibatches per pass")
    clip_coef: float = Field(0.2, gt=0, description="PPO ratio clip")
    ent_coef: float = Field(0.0, ge=0, description="entropy bonus weight")
    vf_coef: float = Field(0.5, ge=0, description="value loss weight")
    max_grad_norm: float = Field(0.5, gt=0, description="gradient clipping norm")
    target_kl: float | None = Field(None, gt=0, description="stop an update early above this KL")
    hidden_sizes: tuple[int, ...] = Field((64, 64), description="hidden layers of actor and critic")
    init_log_std: float = Field(0.0, description="initial log std of continuous actions")
    normalize_obs: bool = Field(True, description="running mean/std normalisation of observations")
    normalize_reward: bool = Field(True, description="scale rewards by the std of discounted returns")
    early_stop: bool = Field(True, description="stop once a periodic evaluation passes the task's "
                                               "success threshold")
    eval_every: int = Field(0, ge=0, description="env steps between evaluations for early stop "
                                                 "(0: at each of the logging checkpoints)")
    checkpoints: int = Field(10, ge=1, description="how many times to log reward component statistics")
    init: Literal["scratch", "best"] = Field("scratch", description="where a candidate's policy starts: scratch, or "
                                                                    "best: the best policy so far while none has "
                                                                    "succeeded (observation normalisation kept, the "
                                                                    "value function fitted afresh to the new reward)")


class SACConfig(BaseModel):
    """Soft Actor-Critic settings (continuous actions only). The defaults are Stable-Baselines3's
    SAC defaults, so that settings tuned for it carry over."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    algorithm: Literal["sac"] = Field(description="sac (off-policy, continuous actions; usually several "
                                                  "times fewer env steps than PPO)")
    total_timesteps: int = Field(100_000, ge=1, description="env steps to train for (all envs together)")
    seed: int = Field(0, description="seed for the env, the networks' initialisation and sampling")
    learning_rate: float = Field(3e-4, gt=0, description="Adam step size of actor, critics and temperature")
    gamma: float = Field(0.99, gt=0, le=1, description="discount factor")
    tau: float = Field(0.005, gt=0, le=1, description="Polyak rate of the target critics (1: copy)")
    buffer_size: int = Field(1_000_000, ge=1, description="replay buffer capacity in transitions "
                                                          "(capped by total_timesteps)")
    batch_size: int = Field(256, ge=1, description="transitions per gradient step")
    learning_starts: int = Field(100, ge=0, description="transitions in the replay buffer before the first "
                                                        "gradient step (reused ones count); until then actions "
                                                        "are uniformly random")
    train_freq: int = Field(1, ge=1, description="steps of the batched env (each num_envs transitions) "
                                                 "between updates")
    gradient_steps: int = Field(1, ge=1, description="gradient steps per update")
    utd_ratio: float | None = Field(None, gt=0, description="gradient steps per env transition; when set, "
                                                            "each update makes round(utd_ratio * num_envs * "
                                                            "train_freq) steps instead of gradient_steps")
    reuse_gradient_steps: float = Field(0.5, ge=0, description="when the run starts with experience reused from "
                                                               "earlier runs: gradient steps on it before the first "
                                                               "env step, per reused transition")
    reuse_max_gradient_steps: int = Field(20_000, ge=0, description="the most gradient steps taken on reused "
                                                                  "experience before the first env step, however "
                                                                  "much was reused")
    reuse_experience: bool = Field(True, description="in a solve, start each candidate from the transitions the "
                                                     "candidates of earlier iterations collected (relabelled with "
                                                     "its own reward in its sandbox)")
    share_live: bool = Field(True, description="in a solve with reuse_experience, candidates training at the same "
                                               "time also send each other the transitions they collect as they "
                                               "go (every share_every env steps), each relabelled with the "
                                               "receiver's reward in its sandbox")
    share_every: int = Field(250, ge=1, description="env steps between two exchanges of live-shared transitions "
                                                    "(what others collected arrives sooner, and counts towards "
                                                    "learning_starts; a chunk is a few KB)")
    experience_mb: float = Field(64.0, gt=0, le=256, description="the most transitions (in MB of float32) a solve "
                                                                  "keeps for reuse; the oldest candidates' go first")
    target_update_interval: int = Field(1, ge=1, description="gradient steps between target updates")
    ent_coef: float | None = Field(None, gt=0, description="fixed entropy temperature alpha; null: tuned "
                                                           "automatically towards target_entropy")
    init_ent_coef: float = Field(1.0, gt=0, description="initial alpha when tuned automatically")
    target_entropy: float | None = Field(None, description="entropy the tuning aims for "
                                                           "(null: -number of action dimensions)")
    hidden_sizes: tuple[int, ...] = Field((256, 256), description="hidden layers (ReLU) of actor and each critic")
    normalize_obs: bool = Field(False, description="running mean/std normalisation of observations (replay "
                                                   "keeps raw ones; each batch is normalised when sampled)")
    early_stop: bool = Field(True, description="stop once a periodic evaluation passes the task's "
                                               "success threshold")
    eval_every: int = Field(0, ge=0, description="env steps between evaluations for early stop "
                                                 "(0: at each of the logging checkpoints)")
    checkpoints: int = Field(10, ge=1, description="how many times to log reward component statistics")

    @model_validator(mode="after")
    def _one_update_size(self) -> SACConfig:
        if self.utd_ratio is not None and self.gradient_steps != 1:
            raise ValueError("set either utd_ratio or gradient_steps, not both")
        return self

    def gradient_steps_per_update(self, num_envs: int) -> int:
        if self.utd_ratio is None:
            return self.gradient_steps
        return max(1, round(self.utd_ratio * num_envs * self.train_freq))


def _algorithm(value: Any) -> str:
    """The tag of a ``train`` section: its ``algorithm``, PPO when it has none."""
    algorithm = value.get("algorithm", "ppo") if isinstance(value, dict) else getattr(value, "algorithm", "ppo")
    return str(algorithm)


TrainConfig = Annotated[
    Union[Annotated[PPOConfig, Tag("ppo")], Annotated[SACConfig, Tag("sac")]],
    Discriminator(_algorithm, custom_error_type="unknown_algorithm",
                  custom_error_message="algorithm must be one of: " + ", ".join(ALGORITHMS)),
]
"""The ``train`` section: :class:`PPOConfig` or :class:`SACConfig`, told apart by ``algorithm``."""


def with_algorithm(config: PPOConfig | SACConfig, algorithm: str) -> PPOConfig | SACConfig:
    """``config`` for another algorithm (``--algorithm`` on a task file written for the other one).

    The other algorithm's defaults, keeping only what means the same to both: ``seed``,
    ``early_stop``, ``eval_every`` and ``checkpoints``. The budget (``total_timesteps``) is not
    kept: SAC reaches in ~10^4 steps what PPO needs ~10^5-10^6 for.
    """
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown algorithm {algorithm!r} (known: {', '.join(ALGORITHMS)})")
    if config.algorithm == algorithm:
        return config
    kept = config.model_dump(include={"seed", "early_stop", "eval_every", "checkpoints"})
    return (SACConfig if algorithm == "sac" else PPOConfig)(algorithm=algorithm, **kept)
