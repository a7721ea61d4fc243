"""PPO settings: the ``train`` section of a task file. One flat record, one docstring per field."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field


class PPOConfig(BaseModel):
    """Proximal Policy Optimization settings (defaults suit small control tasks on a CPU)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

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
