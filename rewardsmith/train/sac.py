"""Soft Actor-Critic on a batched torch env, readable top to bottom (after CleanRL's
``sac_continuous_action.py``, with Stable-Baselines3's defaults and order of updates).

Everything lives on the env's device. The replay buffer is allocated once, with shape
``(slots, num_envs, width)``: each row is one transition (observation, next observation, action
in [-1, 1], reward, terminated), so a minibatch is one gather. The two critics are one network
whose layers hold both copies' weights, stacked, and run as one batched matmul; their target
copy is one flat tensor, so the Polyak update is one op. The loop has no host copies: reward
statistics, episode bookkeeping and the learner's diagnostics stay tensors until a checkpoint.

Time limits are not failures: the target bootstraps through truncated episodes (only
``terminated`` cuts it), from the final observation of the episode, which the buffer keeps.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import torch
from torch import nn

from ..errors import RewardCodeError
from ..expressions import FitnessProgram
from ..fitness import FitnessTracker
from ..schemas import TrainCheckpoint, TrainLog
from .common import RewardFn, RewardStats, TrainOutput, checkpoint_record
from .config import SACConfig
from .optim import Adam
from .policy import SquashedGaussianActor

STATS_STEPS = 32  # env steps of reward statistics buffered before they are folded in
DIAGNOSTICS = ("q_loss", "actor_loss", "alpha", "q_mean", "entropy")


class TwinQ(nn.Module):
    """``copies`` Q networks (ReLU MLPs of the same sizes) evaluated as one.

    Layer ``i`` keeps its weights as ``(copies, in, out)``, so one ``baddbmm`` runs it for every
    copy. ``forward`` may be given other tensors of the same shapes in place of the parameters:
    the target critics, or the critics detached for the actor's loss.
    """

    def __init__(self, in_size: int, hidden_sizes: tuple[int, ...], copies: int = 2):
        super().__init__()
        sizes = [in_size, *hidden_sizes, 1]
        self.params = nn.ParameterList()
        for a, b in zip(sizes[:-1], sizes[1:]):
            bound = 1.0 / math.sqrt(a)  # torch's default for nn.Linear
            self.params.append(nn.Parameter(torch.empty(copies, a, b).uniform_(-bound, bound)))
            self.params.append(nn.Parameter(torch.empty(copies, 1, b).uniform_(-bound, bound)))

    def forward(self, obs_n: torch.Tensor, action: torch.Tensor,
                params: list[torch.Tensor] | None = None) -> torch.Tensor:
        """Q of each copy, shape ``(copies, batch)``."""
        params = list(self.params) if params is None else params
        x = torch.cat([obs_n, action], -1).expand(params[0].shape[0], -1, -1)
        last = len(params) // 2 - 1
        for i in range(last + 1):
            x = torch.baddbmm(params[2 * i + 1], x, params[2 * i])
            if i < last:
                x = x.relu_()  # in place: baddbmm's backward needs its inputs, not its output
        return x.squeeze(-1)


def views_of(flat: torch.Tensor, like: list[torch.Tensor]) -> list[torch.Tensor]:
    """Consecutive pieces of ``flat`` shaped like ``like`` (the layout the optimizer uses)."""
    out, offset = [], 0
    for p in like:
        out.append(flat[offset:offset + p.numel()].view_as(p))
        offset += p.numel()
    return out


def train(env, reward_fn: RewardFn, config: SACConfig, program: FitnessProgram | None = None,
          evaluate: Callable[[SquashedGaussianActor], float] | None = None,
          success_threshold: float | None = None,
          on_checkpoint: Callable[[TrainCheckpoint, int], None] | None = None) -> TrainOutput:
    """Train a policy on ``env`` with ``reward_fn``; log statistics at ``config.checkpoints`` points.

    ``evaluate(policy) -> fitness`` runs at checkpoints (or every ``config.eval_every`` steps)
    when ``config.early_stop`` is set, and training stops once it reaches ``success_threshold``.
    The returned policy is the actor alone: what evaluation and checkpoints need.
    """
    start = time.perf_counter()
    spec = env.action_spec
    if spec.kind != "continuous":
        raise ValueError(f"SAC here is for continuous actions, and {env.description.id} has discrete ones: "
                         "use train.algorithm: ppo")
    device, n, obs_dim, act_dim = env.device, env.num_envs, env.obs_dim, spec.size
    torch.manual_seed(config.seed)
    actor = SquashedGaussianActor(obs_dim, spec, tuple(config.hidden_sizes), config.normalize_obs).to(device)
    critic = TwinQ(obs_dim + act_dim, tuple(config.hidden_sizes)).to(device)
    actor_opt = Adam(actor.parameters(), lr=config.learning_rate)
    critic_opt = Adam(critic.parameters(), lr=config.learning_rate)
    # the target critics: a copy of the critics' flat parameter buffer, so Polyak averaging is one op
    target_flat = critic_opt.flat.clone()
    target_params = views_of(target_flat, critic_opt.params)
    # the critics as the actor's loss sees them: the same storage, no gradients
    frozen_params = [p.detach() for p in critic_opt.params]

    # the temperature alpha, tuned so the policy's entropy stays near target_entropy
    auto_alpha = config.ent_coef is None
    log_alpha = torch.full((1,), math.log(config.init_ent_coef if auto_alpha else config.ent_coef),
                           device=device, requires_grad=auto_alpha)
    alpha_opt = Adam([log_alpha], lr=config.learning_rate) if auto_alpha else None
    target_entropy = -float(act_dim) if config.target_entropy is None else config.target_entropy

    # ---- replay buffer: one row per transition --------------------------------------------------
    slots = max(1, math.ceil(min(config.buffer_size, config.total_timesteps) / n))
    columns = [obs_dim, obs_dim, act_dim, 1, 1]  # obs, next obs, action, reward, terminated
    replay = torch.zeros((slots, n, sum(columns)), device=device)
    rows = replay.view(slots * n, -1)
    slot = filled = 0

    stats = RewardStats(STATS_STEPS, n, device)
    stats_t = 0
    tracker = (FitnessTracker(program, n, env.max_episode_steps, env.description.terminations,
                              env.description.variable_names, device) if program is not None else None)
    diagnostics = torch.zeros(len(DIAGNOSTICS), device=device)
    diagnostics_steps = 0
    checkpoints: list[TrainCheckpoint] = []
    num_iterations = max(1, config.total_timesteps // n)
    checkpoint_every = max(n, config.total_timesteps // config.checkpoints)
    eval_every = config.eval_every or checkpoint_every
    next_checkpoint, next_eval = checkpoint_every, eval_every
    gradient_steps = config.gradient_steps_per_update(n)
    last_eval: float | None = None
    stopped_early = False

    obs = env.reset()
    global_step = total_gradient_steps = 0
    rollout_s = update_s = 0.0  # on a GPU these omit work still queued when they are read
    for iteration in range(num_iterations):
        phase_start = time.perf_counter()

        # ---- one step of every env -------------------------------------------------------------
        with torch.no_grad():
            if global_step < config.learning_starts:
                unit_action = torch.rand((n, act_dim), device=device) * 2 - 1
            else:
                unit_action, _ = actor.sample(actor.normalize(obs))
            step = env.step(actor.to_env(unit_action))
            total, components = reward_fn(step.variables, step.action)
            stats.record(stats_t, total, components)
            stats_t += 1
            if stats_t == STATS_STEPS:
                stats.fold()
                stats_t = 0
            if tracker is not None:
                tracker.update(step.variables, step.action, step.terminated, step.truncated)
            # a non-finite reward is counted by the statistics (and fails the run); it is stored as 0
            reward = torch.nan_to_num(total, nan=0.0, posinf=0.0, neginf=0.0)
            torch.cat([obs, step.final_obs, unit_action, reward[:, None], step.terminated[:, None]], 1,
                      out=replay[slot])
            slot, filled = (slot + 1) % slots, min(filled + 1, slots)
            if actor.obs_norm is not None:
                actor.obs_norm.update(obs)
            obs = step.obs
        global_step += n
        update_start = time.perf_counter()
        rollout_s += update_start - phase_start

        # ---- gradient steps --------------------------------------------------------------------
        if global_step > config.learning_starts and (iteration + 1) % config.train_freq == 0:
            for _ in range(gradient_steps):
                batch = rows[torch.randint(filled * n, (config.batch_size,), device=device)]
                b_obs, b_next_obs, b_action, b_reward, b_terminated = batch.split(columns, 1)
                b_obs, b_next_obs = actor.normalize(b_obs), actor.normalize(b_next_obs)
                alpha = log_alpha.detach().exp()

                # the policy's actions here serve the temperature now and the actor's loss later
                pi_action, pi_logp = actor.sample(b_obs)
                if alpha_opt is not None:
                    # the loss -(log_alpha * (logp + target_entropy)).mean() has this gradient
                    alpha_opt.flat_grad.copy_(-(pi_logp.detach() + target_entropy).mean())
                    alpha_opt.step()

                with torch.no_grad():
                    next_action, next_logp = actor.sample(b_next_obs)
                    next_q = critic(b_next_obs, next_action, target_params).amin(0) - alpha * next_logp
                    target_q = b_reward.squeeze(1) + config.gamma * (1.0 - b_terminated.squeeze(1)) * next_q
                q = critic(b_obs, b_action)
                q_loss = 0.5 * (q - target_q).square().mean(1).sum()
                critic_opt.zero_grad()
                q_loss.backward()
                critic_opt.step()

                q_pi = critic(b_obs, pi_action, frozen_params).amin(0)
                actor_loss = (alpha * pi_logp - q_pi).mean()
                actor_opt.zero_grad()
                actor_loss.backward()
                actor_opt.step()

                total_gradient_steps += 1
                if total_gradient_steps % config.target_update_interval == 0:
                    target_flat.lerp_(critic_opt.flat, config.tau)
                with torch.no_grad():
                    diagnostics += torch.stack([q_loss, actor_loss, alpha[0], q.mean(), -pi_logp.mean()])
                diagnostics_steps += 1
        update_s += time.perf_counter() - update_start

        # ---- logging and early stop ------------------------------------------------------------
        last_iteration = iteration == num_iterations - 1
        if global_step >= next_eval or last_iteration:
            next_eval += eval_every
            if config.early_stop and evaluate is not None and success_threshold is not None:
                last_eval = evaluate(actor)
                stopped_early = last_eval >= success_threshold and not last_iteration
        if global_step >= next_checkpoint or last_iteration or stopped_early:
            next_checkpoint += checkpoint_every
            if stats_t:
                stats.fold(stats_t)
                stats_t = 0
            means = (diagnostics / max(diagnostics_steps, 1)).tolist() if diagnostics_steps else []
            diagnostics.zero_()
            diagnostics_steps = 0
            checkpoint = checkpoint_record(global_step, start, stats, tracker, last_eval,
                                           dict(zip(DIAGNOSTICS, means)))
            last_eval = None
            checkpoints.append(checkpoint)
            if int(stats.nonfinite):
                raise RewardCodeError(f"the reward was NaN or infinite {int(stats.nonfinite)} times "
                                      f"in the first {global_step} steps")
            if on_checkpoint is not None:
                on_checkpoint(checkpoint, config.total_timesteps)
        if stopped_early:
            break

    wall = time.perf_counter() - start
    log = TrainLog(checkpoints=checkpoints, env_steps=global_step, wall_s=wall,
                   steps_per_s=global_step / max(wall, 1e-9), stopped_early=stopped_early,
                   device=str(device), rollout_s=rollout_s, update_s=update_s, algorithm="sac",
                   gradient_steps=total_gradient_steps)
    return TrainOutput(actor.eval(), log)
