"""Actor-critic networks for discrete and continuous actions, with observation normalisation.

The checkpoint is a plain ``state_dict`` (tensors only), loaded with ``weights_only=True`` into a
network the loader builds itself, so a checkpoint written inside a sandbox cannot run code.
"""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn
from torch.distributions import Categorical, Normal

from ..envs.description import ActionSpec


class RunningNorm(nn.Module):
    """Running mean and variance of observations (parallel-batch update), kept on the device."""

    def __init__(self, size: int, clip: float = 10.0, eps: float = 1e-8):
        super().__init__()
        self.register_buffer("mean", torch.zeros(size))
        self.register_buffer("var", torch.ones(size))
        self.register_buffer("count", torch.tensor(1e-4))
        self.clip, self.eps = clip, eps

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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.clamp((x - self.mean) / torch.sqrt(self.var + self.eps), -self.clip, self.clip)


def _layer(inp: int, out: int, gain: float) -> nn.Linear:
    layer = nn.Linear(inp, out)
    nn.init.orthogonal_(layer.weight, gain)
    nn.init.zeros_(layer.bias)
    return layer


def _mlp(inp: int, hidden: tuple[int, ...], out: int, out_gain: float) -> nn.Sequential:
    layers: list[nn.Module] = []
    for h in hidden:
        layers += [_layer(inp, h, math.sqrt(2)), nn.Tanh()]
        inp = h
    layers.append(_layer(inp, out, out_gain))
    return nn.Sequential(*layers)


class ActorCritic(nn.Module):
    """Separate actor and critic MLPs (CleanRL layout); observations normalised inside."""

    def __init__(self, obs_dim: int, action: ActionSpec, hidden_sizes: tuple[int, ...] = (64, 64),
                 init_log_std: float = 0.0, normalize_obs: bool = True):
        super().__init__()
        self.discrete = action.kind == "discrete"
        self.obs_norm = RunningNorm(obs_dim) if normalize_obs else None
        self.critic = _mlp(obs_dim, hidden_sizes, 1, 1.0)
        self.actor = _mlp(obs_dim, hidden_sizes, action.size, 0.01)
        if not self.discrete:
            self.log_std = nn.Parameter(torch.full((action.size,), float(init_log_std)))

    def normalize(self, obs: torch.Tensor) -> torch.Tensor:
        return self.obs_norm(obs) if self.obs_norm is not None else obs

    def value(self, obs_n: torch.Tensor) -> torch.Tensor:
        return self.critic(obs_n).squeeze(-1)

    def distribution(self, obs_n: torch.Tensor):
        out = self.actor(obs_n)
        if self.discrete:
            return Categorical(logits=out)
        return Normal(out, self.log_std.exp().expand_as(out))

    def log_prob(self, dist, action: torch.Tensor) -> torch.Tensor:
        lp = dist.log_prob(action)
        return lp if self.discrete else lp.sum(-1)

    def entropy(self, dist) -> torch.Tensor:
        ent = dist.entropy()
        return ent if self.discrete else ent.sum(-1)

    @torch.no_grad()
    def act(self, obs: torch.Tensor, deterministic: bool = False) -> torch.Tensor:
        """Action for raw observations (for evaluation and rendering)."""
        obs_n = self.normalize(obs)
        out = self.actor(obs_n)
        if deterministic:
            return out.argmax(-1) if self.discrete else out
        return self.distribution(obs_n).sample()


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
