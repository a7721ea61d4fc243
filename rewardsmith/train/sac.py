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

Experience reuse: a run may start with transitions an earlier run collected (an
:class:`Experience`: states, actions, next states, termination flags; no rewards), relabelled with
this run's reward before the first step. A reward is a function of the state after a step and
the action, so the relabelled reward is the one this run would have seen there.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import nn

from ..envs.description import ActionSpec, EnvDescription
from ..errors import RewardCodeError
from ..experience import VARIABLE_PREFIX, Transitions
from ..expressions import FitnessProgram
from ..fitness import FitnessTracker
from ..schemas import TrainCheckpoint, TrainLog
from .common import RewardFn, RewardStats, TrainOutput, checkpoint_record, keep_checkpoint
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


class Experience(NamedTuple):
    """Transitions without rewards, one row each, for another run to relabel and learn from."""

    obs: torch.Tensor                   # (N, obs_dim)
    next_obs: torch.Tensor              # (N, obs_dim): the final observation where an episode ended
    action: torch.Tensor                # (N, act_dim) as applied, in the env's bounds
    terminated: torch.Tensor            # (N,) bool
    variables: dict[str, torch.Tensor]  # name -> (N, ...): the state after each step, what a reward reads

    @property
    def size(self) -> int:
        return int(self.obs.shape[0])

    @staticmethod
    def from_transitions(transitions: Transitions, description: EnvDescription, device: torch.device | str) -> Experience:
        """Transitions read from files (:mod:`rewardsmith.experience`) as tensors on ``device``."""
        columns = {k: torch.from_numpy(v) for k, v in transitions.columns().items()}
        return Experience(columns["obs"].to(device), columns["next_obs"].to(device), columns["action"].to(device),
                          columns["terminated"].to(device, torch.bool),
                          {v.name: columns[VARIABLE_PREFIX + v.name].to(device) for v in description.variables})

    def to_transitions(self, description: EnvDescription) -> Transitions:
        """These transitions for files: the named state of ``description``'s variables only (what a
        reward may read)."""
        cpu = lambda x: x.detach().cpu().numpy()  # noqa: E731
        columns = {"obs": cpu(self.obs), "next_obs": cpu(self.next_obs), "action": cpu(self.action),
                   "terminated": cpu(self.terminated)}
        columns.update({VARIABLE_PREFIX + v.name: cpu(self.variables[v.name]) for v in description.variables})
        return Transitions.from_columns(columns)

    def last(self, count: int, device: torch.device) -> Experience:
        """The newest ``count`` transitions, on ``device``."""
        start = self.size - count
        return Experience(self.obs[start:].to(device), self.next_obs[start:].to(device),
                          self.action[start:].to(device), self.terminated[start:].to(device),
                          {k: v[start:].to(device) for k, v in self.variables.items()})


def relabel(experience: Experience, reward_fn: RewardFn, num_envs: int) -> torch.Tensor:
    """The reward of each transition, ``(N,)``; computed ``num_envs`` rows at a time, so the
    reward is called on batches shaped as in training (``N`` must be a multiple of ``num_envs``).
    The reward gets copies: whatever it does to its arguments leaves ``experience`` as it was."""
    assert experience.size % num_envs == 0
    rewards = torch.empty(experience.size, device=experience.obs.device)
    for lo in range(0, experience.size, num_envs):
        hi = lo + num_envs
        total, _ = reward_fn({k: v[lo:hi].clone() for k, v in experience.variables.items()},
                             experience.action[lo:hi].clone())
        rewards[lo:hi] = total
    return rewards


def replay_rows(experience: Experience, reward_fn: RewardFn, num_envs: int, actor: SquashedGaussianActor,
                what: str | None) -> torch.Tensor:
    """Replay-buffer rows of another run's transitions, relabelled with ``reward_fn``. A reward
    that is not finite on them fails the run (``what`` says whose they were); with ``what`` None
    such rows are kept with their reward as it is, for the caller to drop."""
    reward = relabel(experience, reward_fn, num_envs)
    if what is not None and not bool(torch.isfinite(reward).all()):
        raise RewardCodeError(f"the reward was NaN or infinite on {int((~torch.isfinite(reward)).sum())} of the "
                              f"{experience.size} {what}")
    unit = ((experience.action - actor.action_bias) / actor.action_scale).clamp(-1.0, 1.0)
    return torch.cat([experience.obs, experience.next_obs, unit, reward[:, None], experience.terminated[:, None]], 1)


def views_of(flat: torch.Tensor, like: list[torch.Tensor]) -> list[torch.Tensor]:
    """Consecutive pieces of ``flat`` shaped like ``like`` (the layout the optimizer uses)."""
    out, offset = [], 0
    for p in like:
        out.append(flat[offset:offset + p.numel()].view_as(p))
        offset += p.numel()
    return out


class SACLearner:
    """The networks, their optimizers and one gradient step of SAC on a minibatch of transitions
    (in Stable-Baselines3's order: temperature, critics, actor, targets)."""

    def __init__(self, obs_dim: int, action: ActionSpec, config: SACConfig, device: torch.device):
        self.config = config
        self.actor = SquashedGaussianActor(obs_dim, action, tuple(config.hidden_sizes), config.normalize_obs).to(device)
        self.critic = TwinQ(obs_dim + action.size, tuple(config.hidden_sizes)).to(device)
        self.actor_opt = Adam(self.actor.parameters(), lr=config.learning_rate)
        self.critic_opt = Adam(self.critic.parameters(), lr=config.learning_rate)
        # the target critics: a copy of the critics' flat parameter buffer, so Polyak averaging is one op
        self.target_flat = self.critic_opt.flat.clone()
        self.target_params = views_of(self.target_flat, self.critic_opt.params)
        # the critics as the actor's loss sees them: the same storage, no gradients
        self.frozen_params = [p.detach() for p in self.critic_opt.params]
        # the temperature alpha, tuned so the policy's entropy stays near target_entropy
        auto_alpha = config.ent_coef is None
        alpha = config.init_ent_coef if config.ent_coef is None else config.ent_coef
        self.log_alpha = torch.full((1,), math.log(alpha),
                                    device=device, requires_grad=auto_alpha)
        self.alpha_opt = Adam([self.log_alpha], lr=config.learning_rate) if auto_alpha else None
        self.target_entropy = -float(action.size) if config.target_entropy is None else config.target_entropy
        # a transition's row in the replay buffer: obs, next obs, action in [-1, 1], reward, terminated
        self.columns = [obs_dim, obs_dim, action.size, 1, 1]
        self.steps = 0

    def step(self, batch: torch.Tensor) -> torch.Tensor:
        """One gradient step on ``batch`` (rows as ``columns``); returns its ``DIAGNOSTICS``."""
        actor, critic, config = self.actor, self.critic, self.config
        b_obs, b_next_obs, b_action, b_reward, b_terminated = batch.split(self.columns, 1)
        b_obs, b_next_obs = actor.normalize(b_obs), actor.normalize(b_next_obs)
        alpha = self.log_alpha.detach().exp()

        # the policy's actions here serve the temperature now and the actor's loss later
        pi_action, pi_logp = actor.sample(b_obs)
        if self.alpha_opt is not None:
            # the loss -(log_alpha * (logp + target_entropy)).mean() has this gradient
            self.alpha_opt.flat_grad.copy_(-(pi_logp.detach() + self.target_entropy).mean())
            self.alpha_opt.step()

        with torch.no_grad():
            next_action, next_logp = actor.sample(b_next_obs)
            next_q = critic(b_next_obs, next_action, self.target_params).amin(0) - alpha * next_logp
            target_q = b_reward.squeeze(1) + config.gamma * (1.0 - b_terminated.squeeze(1)) * next_q
        q = critic(b_obs, b_action)
        q_loss = 0.5 * (q - target_q).square().mean(1).sum()
        self.critic_opt.zero_grad()
        q_loss.backward()
        self.critic_opt.step()

        q_pi = critic(b_obs, pi_action, self.frozen_params).amin(0)
        actor_loss = (alpha * pi_logp - q_pi).mean()
        self.actor_opt.zero_grad()
        actor_loss.backward()
        self.actor_opt.step()

        self.steps += 1
        if self.steps % config.target_update_interval == 0:
            self.target_flat.lerp_(self.critic_opt.flat, config.tau)
        with torch.no_grad():
            return torch.stack([q_loss, actor_loss, alpha[0], q.mean(), -pi_logp.mean()])


def train(env, reward_fn: RewardFn, config: SACConfig, program: FitnessProgram | None = None,
          evaluate: Callable[[SquashedGaussianActor], float] | None = None,
          success_threshold: float | None = None,
          on_checkpoint: Callable[[TrainCheckpoint, int], None] | None = None,
          experience: Experience | None = None, keep_experience: bool = False, share=None) -> TrainOutput:
    """Train a policy on ``env`` with ``reward_fn``; log statistics at ``config.checkpoints`` points.

    ``evaluate(policy) -> fitness`` runs at checkpoints (or every ``config.eval_every`` steps)
    when ``config.early_stop`` is set, and training stops once it reaches ``success_threshold``.
    The returned policy is the actor alone: what evaluation and checkpoints need.

    ``experience`` (from earlier runs on the same env) is relabelled with ``reward_fn`` and put in
    the replay buffer first (its newest transitions, as many as fit, in whole steps of the batched
    env); they count towards ``learning_starts``, and ``config.reuse_gradient_steps`` gradient
    steps per reused transition (at most ``config.reuse_max_gradient_steps``) are taken on them
    before the first env step. With ``keep_experience``, the output carries the transitions this
    run collected.

    ``share`` (live sharing, :class:`rewardsmith.runners.sharing.SharedFolder`): every
    ``share.every`` env steps the transitions collected since are published and those received
    from the runs training beside this one are relabelled with ``reward_fn`` and added to the
    replay buffer; they are due as many gradient steps per transition as the run takes per own
    one: those of the first exchange at once (at most ``config.reuse_max_gradient_steps``), later
    ones with the run's own updates, at most doubling them.
    """
    start = time.perf_counter()
    spec = env.action_spec
    if spec.kind != "continuous":
        raise ValueError(f"SAC here is for continuous actions, and {env.description.id} has discrete ones: "
                         "use train.algorithm: ppo")
    device, n, obs_dim, act_dim = env.device, env.num_envs, env.obs_dim, spec.size
    torch.manual_seed(config.seed)
    learner = SACLearner(obs_dim, spec, config, device)
    actor = learner.actor

    # ---- replay buffer: one row per transition --------------------------------------------------
    offered = experience.size if experience is not None else 0
    incoming = share.capacity(obs_dim) if share is not None else 0
    slots = max(1, math.ceil(min(config.buffer_size, config.total_timesteps + offered + incoming) / n))
    columns = learner.columns
    replay = torch.zeros((slots, n, sum(columns)), device=device)
    rows = replay.view(slots * n, -1)
    reused = min(offered, slots * n) // n * n
    if reused and experience is not None:
        experience = experience.last(reused, device)
        rows[:reused] = replay_rows(experience, reward_fn, n, actor, "transitions reused from earlier runs")
        if actor.obs_norm is not None:
            actor.obs_norm.update(experience.obs)
    foreign = bytearray(slots)  # 1 for a slot holding reused or received transitions
    foreign[:reused // n] = b"\x01" * (reused // n)
    foreign_slots = reused // n
    filled = reused // n
    slot = filled % slots
    reused_share = 0.0  # summed over gradient steps
    received = 0  # transitions received from the runs training beside this one
    kept = None  # this run's transitions, with the state a reward reads, when asked for or shared
    published = 0  # env steps (of the batched env) of this run already published
    next_share = share.every if share is not None else None
    owed = 0  # gradient steps due for received transitions, not taken yet

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
    global_step = 0
    rollout_s = update_s = 0.0  # on a GPU these omit work still queued when they are read

    def learn(steps: int) -> None:
        """``steps`` gradient steps, each on a minibatch drawn from the filled part of the buffer."""
        nonlocal diagnostics_steps, reused_share
        for _ in range(steps):
            diagnostics.add_(learner.step(rows[torch.randint(filled * n, (config.batch_size,), device=device)]))
        diagnostics_steps += steps
        reused_share += steps * foreign_slots / filled

    # ---- learning from reused experience before the first step -------------------------------------
    if reused > config.learning_starts:
        pretrain_start = time.perf_counter()
        learn(min(round(config.reuse_gradient_steps * reused), config.reuse_max_gradient_steps))
        update_s += time.perf_counter() - pretrain_start

    def take_in(chunks: list[Experience]) -> int:
        """Relabel received transitions, put them into the ring and learn from them; how many."""
        nonlocal slot, filled, foreign_slots
        taken = 0
        for chunk in chunks:
            count = min(chunk.size // n, slots) * n
            if not count:
                continue
            block = replay_rows(chunk.last(count, device), reward_fn, n, actor, None).view(count // n, n, -1)
            # another run's states where this reward is not finite are dropped (whole steps of the batched env)
            block = block[torch.isfinite(block[:, :, -2]).all(1)]
            at = [(slot + k) % slots for k in range(block.shape[0])]
            if not at:
                continue
            replay[torch.tensor(at, device=device)] = block
            for k in at:
                foreign_slots += 1 - foreign[k]
                foreign[k] = 1
            slot, filled = (slot + len(at)) % slots, min(filled + len(at), slots)
            taken += len(at) * n  # (the observation statistics stay this run's own)
        return taken

    for iteration in range(num_iterations):
        phase_start = time.perf_counter()

        # ---- one step of every env -------------------------------------------------------------
        with torch.no_grad():
            if global_step + reused + received < config.learning_starts:
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
            foreign_slots -= foreign[slot]  # the ring came round to reused or received rows
            foreign[slot] = 0
            slot, filled = (slot + 1) % slots, min(filled + 1, slots)
            if keep_experience or share is not None:
                if kept is None:
                    kept = _KeptTransitions(num_iterations, obs, step)
                kept.record(iteration, obs, step)
            if actor.obs_norm is not None:
                actor.obs_norm.update(obs)
            obs = step.obs
        global_step += n
        update_start = time.perf_counter()
        rollout_s += update_start - phase_start

        # ---- gradient steps --------------------------------------------------------------------
        if global_step + reused + received > config.learning_starts and (iteration + 1) % config.train_freq == 0:
            extra = min(owed, gradient_steps)  # for received transitions: at most as many again as its own
            owed -= extra
            learn(gradient_steps + extra)
        if next_share is not None and global_step >= next_share and kept is not None:
            next_share += share.every
            share.publish(kept.experience(iteration + 1, since=published))
            published = iteration + 1
            taken = take_in(share.receive())
            # as many gradient steps per received transition as per own one (the updates follow the
            # data). What was there when this run joined is learnt from at once (as experience of
            # earlier iterations is); what comes later is paid with the run's own updates, at most
            # doubling them, so a run that receives much does not fall behind the runs it shares with.
            due = round(taken * gradient_steps / (n * config.train_freq))
            if received == 0 and global_step + reused + taken > config.learning_starts:
                learn(min(due, config.reuse_max_gradient_steps))
                due = 0
            received += taken
            owed += due
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
            means = (diagnostics / diagnostics_steps).tolist() if diagnostics_steps else []
            diagnostics.zero_()
            diagnostics_steps = 0
            checkpoint = checkpoint_record(global_step, start, stats, tracker, last_eval,
                                           dict(zip(DIAGNOSTICS, means)))
            last_eval = None
            keep_checkpoint(checkpoints, checkpoint, stats, global_step, on_checkpoint, config.total_timesteps)
        if stopped_early:
            break

    if share is not None and kept is not None:  # what is left, for the runs still training
        share.publish(kept.experience(iteration + 1, since=published))
    wall = time.perf_counter() - start
    log = TrainLog(checkpoints=checkpoints, env_steps=global_step, wall_s=wall,
                   steps_per_s=global_step / max(wall, 1e-9), stopped_early=stopped_early,
                   device=str(device), rollout_s=rollout_s, update_s=update_s, algorithm="sac",
                   gradient_steps=learner.steps, reused_transitions=reused, shared_transitions=received,
                   reused_share=min(1.0, reused_share / max(learner.steps, 1)))
    return TrainOutput(actor.eval(), log,
                       kept.experience(iteration + 1) if kept is not None and keep_experience else None)


class _KeptTransitions:
    """This run's transitions in the form of an :class:`Experience`, one slot per env step."""

    def __init__(self, steps: int, obs: torch.Tensor, step):
        n, device = obs.shape[0], obs.device
        self.obs = torch.zeros((steps, *obs.shape), device=device)
        self.next_obs = torch.zeros_like(self.obs)
        self.action = torch.zeros((steps, *step.action.shape), device=device)
        self.terminated = torch.zeros((steps, n), dtype=torch.bool, device=device)
        self.variables = {k: torch.zeros((steps, *v.shape), dtype=v.dtype, device=device)
                          for k, v in step.variables.items()}

    def record(self, t: int, obs: torch.Tensor, step) -> None:
        self.obs[t], self.next_obs[t], self.action[t], self.terminated[t] = obs, step.final_obs, step.action, \
            step.terminated
        for k, v in step.variables.items():
            self.variables[k][t] = v

    def experience(self, steps: int, since: int = 0) -> Experience:
        """The transitions of env steps ``since`` to ``steps``."""
        flat = lambda x: x[since:steps].reshape(-1, *x.shape[2:])  # noqa: E731
        return Experience(flat(self.obs), flat(self.next_obs), flat(self.action), flat(self.terminated),
                          {k: flat(v) for k, v in self.variables.items()})
