"""Policies with observation normalisation: PPO's actor-critic (discrete and continuous actions)
and SAC's tanh-squashed Gaussian actor (continuous), saved, loaded and evaluated the same way.

Built for the rollout hot loop: layers are applied with ``F.linear`` (no per-module call
overhead) and actions are sampled and scored with closed-form expressions rather than
``torch.distributions`` objects, whose construction costs more than the networks themselves at
small batch sizes.

The checkpoint is a plain ``state_dict`` (tensors only), loaded with ``weights_only=True`` into a
network the loader builds itself, so a checkpoint written inside a sandbox cannot run code.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from ..envs.description import ActionSpec

LOG_SQRT_2PI = 0.5 * math.log(2 * math.pi)


class RunningNorm(nn.Module):
    """Running mean and variance of observations (parallel-batch update), kept on the device.

    ``forward`` uses the statistics as of the last ``update``; the trainer updates them once per
    rollout, so every observation of a rollout is normalised the same way.
    """

    mean: torch.Tensor  # buffers, saved with the policy
    var: torch.Tensor
    count: torch.Tensor

    def __init__(self, size: int, clip: float = 10.0, eps: float = 1e-8):
        super().__init__()
        self.register_buffer("mean", torch.zeros(size))
        self.register_buffer("var", torch.ones(size))
        self.register_buffer("count", torch.tensor(1e-4))
        self.clip, self.eps = clip, eps
        self._inv_std: torch.Tensor | None = None

    @torch.no_grad()
    def update(self, x: torch.Tensor) -> None:
        x = x.reshape(-1, x.shape[-1])
        batch_mean, batch_var, n = x.mean(0), x.var(0, unbiased=False), x.shape[0]
        delta = batch_mean - self.mean
        total = self.count + n
        self.mean += delta * n / total
        m2 = self.var * self.count + batch_var * n + delta.square() * self.count * n / total
        self.var.copy_(m2 / total)
        self.count.copy_(total)
        self._inv_std = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        inv_std = self._inv_std
        if inv_std is None or inv_std.device != self.var.device:
            inv_std = torch.rsqrt(self.var + self.eps)
            if not torch.is_inference_mode_enabled():  # (an evaluation's inference tensor must not stay)
                self._inv_std = inv_std
        return torch.clamp((x - self.mean) * inv_std, -self.clip, self.clip)

    def _load_from_state_dict(self, *args, **kwargs):
        self._inv_std = None
        super()._load_from_state_dict(*args, **kwargs)


class MLP(nn.Module):
    """Linear layers with an activation between them (tanh by default).

    With ``out_gain``, orthogonal initialisation with that gain on the last layer (CleanRL's PPO
    layout); without, torch's default initialisation (as SB3 and CleanRL use for SAC).
    """

    def __init__(self, sizes: list[int], out_gain: float | None, activation=torch.tanh):
        super().__init__()
        linears = [nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
        self.layers = nn.ModuleList(linears)
        self.activation = activation
        if out_gain is not None:
            for i, layer in enumerate(linears):
                nn.init.orthogonal_(layer.weight, out_gain if i == len(self.layers) - 1 else math.sqrt(2))
                nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = F.linear(x, layer.weight, layer.bias)  # type: ignore[arg-type]  # each layer is an nn.Linear
            if i < last:
                x = self.activation(x)
        return x


class ActorCritic(nn.Module):
    """Separate actor and critic MLPs; observations are normalised inside (see ``normalize``)."""

    def __init__(self, obs_dim: int, action: ActionSpec, hidden_sizes: tuple[int, ...] = (64, 64),
                 init_log_std: float = 0.0, normalize_obs: bool = True):
        super().__init__()
        self.discrete = action.kind == "discrete"
        self.obs_norm = RunningNorm(obs_dim) if normalize_obs else None
        self.critic = MLP([obs_dim, *hidden_sizes, 1], 1.0)
        self.actor = MLP([obs_dim, *hidden_sizes, action.size], 0.01)
        if not self.discrete:
            self.log_std = nn.Parameter(torch.full((action.size,), float(init_log_std)))

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        return self.obs_norm(obs) if self.obs_norm is not None else obs

    def value(self, obs_n: torch.Tensor) -> torch.Tensor:
        return self.critic(obs_n).squeeze(-1)

    def sample(self, obs_n: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A sampled action and its log-probability."""
        out = self.actor(obs_n)
        if self.discrete:
            log_p = torch.log_softmax(out, -1)
            # Gumbel-max: argmax(log p + Gumbel noise) is a sample of the categorical
            gumbel = -torch.log(-torch.log(torch.rand_like(log_p).clamp_(min=1e-20)))
            action = torch.argmax(log_p + gumbel, -1)
            return action, log_p.gather(-1, action.unsqueeze(-1)).squeeze(-1)
        action = out + self.log_std.exp() * torch.randn_like(out)
        return action, self._normal_log_prob(out, action)

    def _normal_log_prob(self, mean: torch.Tensor, action: torch.Tensor) -> torch.Tensor:
        z = (action - mean) * torch.exp(-self.log_std)
        return (-0.5 * z.square() - self.log_std - LOG_SQRT_2PI).sum(-1)

    def evaluate(self, obs_n: torch.Tensor, action: torch.Tensor,
                 entropy: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Log-probability of ``action`` under the current policy, and the entropy (if asked)."""
        out = self.actor(obs_n)
        if self.discrete:
            log_p = torch.log_softmax(out, -1)
            h = -(log_p.exp() * log_p).sum(-1) if entropy else None
            return log_p.gather(-1, action.long().unsqueeze(-1)).squeeze(-1), h
        h = (self.log_std + 0.5 + LOG_SQRT_2PI).sum().expand(out.shape[0]) if entropy else None
        return self._normal_log_prob(out, action), h

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        """Action for raw observations (for evaluation and rendering)."""
        obs_n = self.normalize(obs)
        if deterministic:
            out = self.actor(obs_n)
            return out.argmax(-1) if self.discrete else out
        return self.sample(obs_n)[0]


class SquashedGaussianActor(nn.Module):
    """SAC's policy: a Gaussian whose sample is squashed by tanh into the action box.

    One MLP (ReLU) gives the mean and log std of each action dimension (log std clamped to
    [-20, 2], as SB3). ``sample`` works in the unit box [-1, 1] where the critics and the replay
    buffer live; ``act`` returns actions in the env's own bounds.
    """

    LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
    action_scale: torch.Tensor
    action_bias: torch.Tensor

    def __init__(self, obs_dim: int, action: ActionSpec, hidden_sizes: tuple[int, ...] = (256, 256),
                 normalize_obs: bool = False):
        super().__init__()
        if action.kind != "continuous":
            raise ValueError("SAC here is for continuous actions; this env's actions are discrete: "
                             "use train.algorithm: ppo")
        low, high = torch.tensor(action.low, dtype=torch.float32), torch.tensor(action.high, dtype=torch.float32)
        if not (torch.isfinite(low).all() and torch.isfinite(high).all()):
            raise ValueError("SAC squashes actions into their bounds, and this env's action bounds are not finite")
        self.action_size = action.size
        self.obs_norm = RunningNorm(obs_dim) if normalize_obs else None
        self.net = MLP([obs_dim, *hidden_sizes, 2 * action.size], None, torch.relu_)  # in place: saves a copy
        # derived from the action spec, so not saved in the checkpoint
        self.register_buffer("action_scale", (high - low) / 2, persistent=False)
        self.register_buffer("action_bias", (high + low) / 2, persistent=False)

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        return self.obs_norm(obs) if self.obs_norm is not None else obs

    def sample(self, obs_n: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """A sampled action in [-1, 1] and its log-probability (differentiable: reparameterised)."""
        mean, log_std = self.net(obs_n).split(self.action_size, -1)
        log_std = log_std.clamp(self.LOG_STD_MIN, self.LOG_STD_MAX)
        noise = torch.randn_like(mean)
        action = torch.tanh(mean + log_std.exp() * noise)
        # log N(u) minus log |d tanh(u)/du| = log(1 - tanh(u)^2), with SB3's and CleanRL's 1e-6
        # (which bounds the correction for saturated actions)
        log_prob = -0.5 * noise.square() - log_std - LOG_SQRT_2PI - torch.log(1.0 - action.square() + 1e-6)
        return action, log_prob.sum(-1)

    def to_env(self, unit_action: torch.Tensor) -> torch.Tensor:
        """An action in [-1, 1] scaled to the env's bounds."""
        return torch.addcmul(self.action_bias, unit_action, self.action_scale)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        """Action for raw observations (for evaluation and rendering), in the env's bounds."""
        obs_n = self.normalize(obs)
        if deterministic:
            unit = torch.tanh(self.net(obs_n)[..., :self.action_size])
        else:
            unit = self.sample(obs_n)[0]
        return self.to_env(unit)


Policy = ActorCritic | SquashedGaussianActor
"""What a trainer returns and what evaluation, rendering and checkpoints take: ``act(obs)``."""


def build_policy(obs_dim: int, action: ActionSpec, config) -> Policy:
    """The network the training settings describe (``config.algorithm`` picks PPO's or SAC's)."""
    if getattr(config, "algorithm", "ppo") == "sac":
        return SquashedGaussianActor(obs_dim, action, tuple(config.hidden_sizes), config.normalize_obs)
    return ActorCritic(obs_dim, action, tuple(config.hidden_sizes), config.init_log_std,
                       config.normalize_obs)


def save_policy(policy: Policy, path: str | Path) -> None:
    torch.save({k: v.detach().cpu() for k, v in policy.state_dict().items()}, path)


def load_policy(path: str | Path, obs_dim: int, action: ActionSpec, config,
                device: str | torch.device = "cpu") -> Policy:
    """Build the network from trusted settings and load weights only (no pickle code)."""
    policy = build_policy(obs_dim, action, config)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError("policy checkpoint is not a state dict")
    policy.load_state_dict(state, strict=True)
    return policy.to(device).eval()
