"""Actor-critic networks for discrete and continuous actions, with observation normalisation.

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
        if self._inv_std is None or self._inv_std.device != self.var.device:
            self._inv_std = torch.rsqrt(self.var + self.eps)
        return torch.clamp((x - self.mean) * self._inv_std, -self.clip, self.clip)

    def _load_from_state_dict(self, *args, **kwargs):
        self._inv_std = None
        super()._load_from_state_dict(*args, **kwargs)


class MLP(nn.Module):
    """Linear layers with tanh between them, orthogonal initialisation (CleanRL's layout)."""

    def __init__(self, sizes: list[int], out_gain: float):
        super().__init__()
        linears = [nn.Linear(a, b) for a, b in zip(sizes[:-1], sizes[1:])]
        self.layers = nn.ModuleList(linears)
        for i, layer in enumerate(linears):
            nn.init.orthogonal_(layer.weight, out_gain if i == len(self.layers) - 1 else math.sqrt(2))
            nn.init.zeros_(layer.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        last = len(self.layers) - 1
        for i, layer in enumerate(self.layers):
            x = F.linear(x, layer.weight, layer.bias)  # type: ignore[arg-type]  # each layer is an nn.Linear
            if i < last:
                x = torch.tanh(x)
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


def build_policy(obs_dim: int, action: ActionSpec, config) -> ActorCritic:
    return ActorCritic(obs_dim, action, tuple(config.hidden_sizes), config.init_log_std,
                       config.normalize_obs)


def save_policy(policy: ActorCritic, path: str | Path) -> None:
    torch.save({k: v.detach().cpu() for k, v in policy.state_dict().items()}, path)


def load_policy(path: str | Path, obs_dim: int, action: ActionSpec, config,
                device: str | torch.device = "cpu") -> ActorCritic:
    """Build the network from trusted settings and load weights only (no pickle code)."""
    policy = build_policy(obs_dim, action, config)
    state = torch.load(path, map_location="cpu", weights_only=True)
    if not isinstance(state, dict):
        raise ValueError("policy checkpoint is not a state dict")
    policy.load_state_dict(state, strict=True)
    return policy.to(device).eval()
