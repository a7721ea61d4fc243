"""PPO on a batched torch env, readable top to bottom (after CleanRL's ``ppo_continuous_action.py``).

Env state, rollout buffers, reward statistics and the policy all live on one device; buffers are
allocated once with shape ``(num_steps, num_envs, ...)``. The rollout loop has no host copies:
reward statistics, non-finite counts and episode bookkeeping are accumulated as tensors and only
read at the ~10 logging checkpoints.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import torch

from ..expressions import FitnessProgram
from ..fitness import FitnessTracker
from ..schemas import TrainCheckpoint, TrainLog
from .common import RewardFn, RewardStats, TrainOutput, checkpoint_record, keep_checkpoint
from .config import PPOConfig
from .optim import Adam
from .policy import ActorCritic

VALUE_WARMUP_UPDATES = 1  # a warm start's first updates fit the fresh value function alone
DIAGNOSTICS = ("policy_loss", "value_loss", "entropy", "approx_kl", "clip_fraction", "explained_variance")


class Diagnostics:
    """PPO's health as CleanRL logs it, summed on the device and read only at checkpoints: the
    losses, entropy, approximate KL (``(r - 1) - log r``) and clip fraction of the last minibatch
    of each epoch (no extra work in the other minibatches), and the explained variance of the
    value function on each rollout."""

    def __init__(self, device: torch.device):
        self.sum = torch.zeros(len(DIAGNOSTICS), dtype=torch.float64, device=device)
        self.count = torch.zeros(len(DIAGNOSTICS), dtype=torch.float64, device=device)

    def minibatch(self, parts: torch.Tensor) -> None:
        """``parts``: policy loss, value loss, entropy, approx KL, clip fraction (detached)."""
        self.sum[:5] += parts
        self.count[:5] += 1

    def rollout(self, values: torch.Tensor, returns: torch.Tensor) -> None:
        var = returns.var()
        explained = torch.where(var > 0, 1 - (returns - values).var() / var, torch.zeros_like(var))
        self.sum[5] += explained
        self.count[5] += 1

    def pop(self) -> dict[str, float]:
        means = (self.sum / self.count.clamp(min=1)).tolist()
        counts = self.count.tolist()
        self.sum.zero_()
        self.count.zero_()
        return {name: m for name, m, c in zip(DIAGNOSTICS, means, counts) if c}


class ReturnScaler:
    """Scale rewards by the running std of the discounted return (as SB3's VecNormalize)."""

    def __init__(self, num_envs: int, gamma: float, device: torch.device):
        self.gamma = gamma
        self.ret = torch.zeros(num_envs, device=device)
        self.mean = torch.zeros((), device=device, dtype=torch.float64)
        self.var = torch.ones((), device=device, dtype=torch.float64)
        self.count = 1e-4

    def scale(self, rewards: torch.Tensor, dones: torch.Tensor) -> torch.Tensor:
        """Update the return statistics with a rollout ``(T, n)`` and return scaled rewards."""
        returns = torch.empty_like(rewards)
        for t in range(rewards.shape[0]):
            self.ret = self.ret * self.gamma + rewards[t]
            returns[t] = self.ret
            self.ret = self.ret * (1.0 - dones[t])
        x = returns.double().flatten()
        n, batch_mean, batch_var = x.numel(), x.mean(), x.var(unbiased=False)
        delta, total = batch_mean - self.mean, self.count + n
        self.mean = self.mean + delta * n / total
        self.var = (self.var * self.count + batch_var * n + delta.square() * self.count * n / total) / total
        self.count = total
        return torch.clamp(rewards * torch.rsqrt(self.var + 1e-8).float(), -10.0, 10.0)


def train(env, reward_fn: RewardFn, config: PPOConfig, program: FitnessProgram | None = None,
          evaluate: Callable[[ActorCritic], float] | None = None,
          success_threshold: float | None = None,
          on_checkpoint: Callable[[TrainCheckpoint, int], None] | None = None,
          initial: ActorCritic | None = None) -> TrainOutput:
    """Train a policy on ``env`` with ``reward_fn``; log statistics at ``config.checkpoints`` points.

    ``evaluate(policy) -> fitness`` runs at checkpoints when ``config.early_stop`` is set, and
    training stops once it reaches ``success_threshold``. With ``initial`` (warm start: another
    reward's trained policy), the actor and the observation normalisation start from it; the
    value function starts afresh (it estimated the other reward's returns) and is fitted alone
    for the first update, before the actor moves.
    """
    start = time.perf_counter()
    device, n, T = env.device, env.num_envs, config.num_steps
    # On a CPU, reading a flag costs nothing, so work for rare events (an episode ends, a time
    # limit) is skipped when it is not needed; on a GPU that read would stall the pipeline.
    cheap_sync = device.type == "cpu"
    torch.manual_seed(config.seed)
    spec = env.action_spec
    policy = ActorCritic(env.obs_dim, spec, tuple(config.hidden_sizes), config.init_log_std,
                         config.normalize_obs).to(device)
    if initial is not None:
        warm_start(policy, initial)
    optimizer = Adam(policy.parameters(), lr=config.learning_rate, eps=1e-5)

    batch_size = n * T
    num_updates = max(1, config.total_timesteps // batch_size)
    minibatch_size = max(1, batch_size // config.num_minibatches)
    obs_dim = env.obs_dim
    obs_buf = torch.zeros((T, n, obs_dim), device=device)          # normalised, as the policy saw them
    raw_obs_buf = torch.zeros((T, n, obs_dim), device=device)      # raw, to update the normaliser
    if spec.kind == "discrete":
        act_buf = torch.zeros((T, n), device=device, dtype=torch.long)
    else:
        act_buf = torch.zeros((T, n, spec.size), device=device)
    logp_buf, val_buf, boot_buf, done_buf, start_buf = (torch.zeros((T, n), device=device) for _ in range(5))

    stats = RewardStats(T, n, device)
    diagnostics = Diagnostics(device)
    tracker = (FitnessTracker(program, n, env.max_episode_steps, env.description.terminations,
                              env.description.variable_names, device) if program is not None else None)
    scaler = ReturnScaler(n, config.gamma, device) if config.normalize_reward else None
    checkpoints: list[TrainCheckpoint] = []
    checkpoint_every = max(batch_size, config.total_timesteps // config.checkpoints)
    eval_every = config.eval_every or checkpoint_every
    next_checkpoint, next_eval = checkpoint_every, eval_every
    last_eval: float | None = None
    stopped_early = False

    obs = env.reset()
    episode_start = torch.ones(n, device=device)
    global_step = 0
    rollout_s = update_s = 0.0  # on a GPU these omit work still queued when they are read
    gradient_steps = 0
    for update in range(num_updates):
        phase_start = time.perf_counter()
        if config.anneal_lr:
            optimizer.lr = config.learning_rate * (1.0 - update / num_updates)

        # ---- rollout -------------------------------------------------------------------------
        with torch.no_grad():
            for t in range(T):
                obs_n = policy.normalize(obs)
                action, logp_buf[t] = policy.sample(obs_n)
                val_buf[t] = policy.value(obs_n)
                obs_buf[t], raw_obs_buf[t], act_buf[t], start_buf[t] = obs_n, obs, action, episode_start

                step = env.step(action)
                total, components = reward_fn(step.variables, step.action)
                stats.record(t, total, components)
                done = step.terminated | step.truncated
                # bootstrap through time limits: the episode did not really end
                if not cheap_sync or bool(step.truncated.any()):
                    boot_buf[t] = policy.value(policy.normalize(step.final_obs)) * step.truncated
                else:
                    boot_buf[t] = 0.0
                if tracker is not None:
                    tracker.update(step.variables, step.action, step.terminated, step.truncated)
                obs, episode_start = step.obs, done.float()
                done_buf[t] = episode_start
            global_step += batch_size

            # ---- advantages ----------------------------------------------------------------------
            rewards = stats.fold()
            if scaler is not None:
                rewards = scaler.scale(rewards, done_buf)
            rewards = rewards + config.gamma * boot_buf
            next_value = policy.value(policy.normalize(obs))
            advantages = torch.zeros_like(rewards)
            last_gae = torch.zeros(n, device=device)
            for t in reversed(range(T)):
                if t == T - 1:
                    not_done, next_values = 1.0 - episode_start, next_value
                else:
                    not_done, next_values = 1.0 - start_buf[t + 1], val_buf[t + 1]
                delta = rewards[t] + config.gamma * next_values * not_done - val_buf[t]
                last_gae = delta + config.gamma * config.gae_lambda * not_done * last_gae
                advantages[t] = last_gae
            returns = advantages + val_buf
            diagnostics.rollout(val_buf, returns)
        if policy.obs_norm is not None:
            policy.obs_norm.update(raw_obs_buf)
        update_start = time.perf_counter()
        rollout_s += update_start - phase_start

        # ---- update --------------------------------------------------------------------------
        b_obs = obs_buf.reshape(batch_size, obs_dim)
        b_act = act_buf.reshape(batch_size, *act_buf.shape[2:])
        # per-sample scalars side by side: a minibatch takes them with one gather
        b_scalars = torch.stack([logp_buf, advantages, returns, val_buf], -1).reshape(batch_size, 4)
        for _epoch in range(config.update_epochs):
            perm = torch.randperm(batch_size, device=device)
            for lo in range(0, batch_size, minibatch_size):
                mb = perm[lo:lo + minibatch_size]
                loss, parts = ppo_loss(policy, b_obs[mb], b_act[mb], b_scalars[mb], config,
                                       diagnose=lo + minibatch_size >= batch_size,
                                       actor=initial is None or update >= VALUE_WARMUP_UPDATES)
                optimizer.zero_grad()
                loss.backward()
                optimizer.clip_grad_norm(config.max_grad_norm)
                optimizer.step()
                gradient_steps += 1
            if parts is not None:  # the epoch's last minibatch
                diagnostics.minibatch(parts)
                if config.target_kl is not None and float(parts[3]) > config.target_kl:
                    break
        update_s += time.perf_counter() - update_start

        # ---- logging and early stop ------------------------------------------------------------
        last_update = update == num_updates - 1
        if global_step >= next_eval or last_update:
            next_eval += eval_every
            if config.early_stop and evaluate is not None and success_threshold is not None:
                last_eval = evaluate(policy)
                stopped_early = last_eval >= success_threshold and not last_update
        if global_step >= next_checkpoint or last_update or stopped_early:
            next_checkpoint += checkpoint_every
            checkpoint = checkpoint_record(global_step, start, stats, tracker, last_eval, diagnostics.pop())
            last_eval = None
            keep_checkpoint(checkpoints, checkpoint, stats, global_step, on_checkpoint, config.total_timesteps)
        if stopped_early:
            break

    wall = time.perf_counter() - start
    log = TrainLog(checkpoints=checkpoints, env_steps=global_step, wall_s=wall,
                   steps_per_s=global_step / max(wall, 1e-9), stopped_early=stopped_early,
                   device=str(device), rollout_s=rollout_s, update_s=update_s,
                   algorithm="ppo", gradient_steps=gradient_steps)
    return TrainOutput(policy.eval(), log)


def warm_start(policy: ActorCritic, initial: ActorCritic) -> None:
    """Start ``policy``'s actor (and its action noise, its observation normalisation) from
    ``initial``'s; its critic keeps its fresh weights."""
    with torch.no_grad():
        policy.actor.load_state_dict(initial.actor.state_dict())
        if not policy.discrete:
            policy.log_std.copy_(initial.log_std)
        if policy.obs_norm is not None and initial.obs_norm is not None:
            policy.obs_norm.load_state_dict(initial.obs_norm.state_dict())


def ppo_loss(policy: ActorCritic, obs: torch.Tensor, action: torch.Tensor, scalars: torch.Tensor,
             config: PPOConfig, diagnose: bool = False, actor: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Clipped policy loss plus clipped value loss (minus the entropy bonus) on one minibatch;
    ``scalars`` holds each sample's old log-probability, advantage, return and value. With
    ``diagnose``, also the detached policy loss, value loss, entropy, approx KL and clip fraction.
    With ``actor`` false, the value loss alone (a warm start's first update)."""
    old_logp, adv, ret, old_val = scalars.unbind(-1)
    new_logp, entropy = policy.evaluate(obs, action, entropy=bool(config.ent_coef) or diagnose)
    log_ratio = new_logp - old_logp
    ratio = log_ratio.exp()
    adv = (adv - adv.mean()) / (adv.std() + 1e-8)
    pg_loss = -torch.min(adv * ratio, adv * torch.clamp(ratio, 1 - config.clip_coef, 1 + config.clip_coef)).mean()
    new_val = policy.value(obs)
    v_clipped = old_val + torch.clamp(new_val - old_val, -config.clip_coef, config.clip_coef)
    v_loss = 0.5 * torch.max((new_val - ret).square(), (v_clipped - ret).square()).mean()
    loss = pg_loss + config.vf_coef * v_loss if actor else config.vf_coef * v_loss
    if actor and config.ent_coef and entropy is not None:
        loss = loss - config.ent_coef * entropy.mean()
    if not diagnose:
        return loss, None
    with torch.no_grad():
        approx_kl = ((ratio - 1) - log_ratio).mean()
        clipped = ((ratio - 1).abs() > config.clip_coef).float().mean()
        ent = entropy.mean() if entropy is not None else torch.zeros_like(approx_kl)
        parts = torch.stack([pg_loss.detach(), v_loss.detach(), ent, approx_kl, clipped]).double()
    return loss, parts

