"""Adam with gradient-norm clipping, over one flat buffer of parameters.

Why not ``torch.optim.Adam``: its first use imports ``torch._dynamo`` (and sympy), which adds
seconds to every worker's start-up, longer than training CartPole takes. And why one flat
buffer: the optimizer moves every parameter into one tensor (each parameter becomes a view of
it) and gives each a gradient that is a view of a second one, so zeroing, clipping and a step are
a handful of ops whatever the number of layers. At the minibatch sizes of control tasks on a CPU,
the number of ops, not the arithmetic, sets the speed of an update (measured: 247 ops per step on
per-parameter lists, 19 here, counted by the torch profiler).

What this asks of its user: nothing may replace a parameter's ``.data`` or ``.grad`` after the
optimizer is made (no ``.to()``/dtype change, no ``Module.zero_grad()``, no
``backward(create_graph=True)``): the optimizer would then step on gradients it never sees. And
because a step writes the flat buffer, not the parameters, autograd's check for parameters
changed in place does not see it: run backward before ``step``, as PPO does.

The update is the textbook one (Kingma & Ba) with PyTorch's epsilon placement; a test checks it,
clipping included, against ``torch.optim.Adam`` and ``clip_grad_norm_`` step for step.
"""

from __future__ import annotations

import math

import torch


class Adam:
    def __init__(self, params, lr: float, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8):
        self.params = [p for p in params if p.requires_grad]
        self.lr, self.betas, self.eps = lr, betas, eps
        first = self.params[0]
        size = sum(p.numel() for p in self.params)
        self.flat = torch.empty(size, device=first.device, dtype=first.dtype)
        self.flat_grad = torch.zeros_like(self.flat)
        offset = 0
        for p in self.params:
            end = offset + p.numel()
            self.flat[offset:end].copy_(p.detach().reshape(-1))
            p.data = self.flat[offset:end].view_as(p)
            # backward adds into an existing gradient in place, so it stays a view of flat_grad
            p.grad = self.flat_grad[offset:end].view_as(p)
            offset = end
        self.exp_avg = torch.zeros_like(self.flat)
        self.exp_avg_sq = torch.zeros_like(self.flat)
        self.steps = 0

    def zero_grad(self) -> None:
        self.flat_grad.zero_()

    @torch.no_grad()
    def clip_grad_norm(self, max_norm: float) -> torch.Tensor:
        """Scale gradients so their global L2 norm is at most ``max_norm`` (no host sync)."""
        norm = torch.linalg.vector_norm(self.flat_grad)
        self.flat_grad.mul_(torch.clamp(max_norm / (norm + 1e-6), max=1.0))
        return norm

    @torch.no_grad()
    def step(self) -> None:
        self.steps += 1
        beta1, beta2 = self.betas
        grad = self.flat_grad
        self.exp_avg.lerp_(grad, 1 - beta1)
        self.exp_avg_sq.mul_(beta2).addcmul_(grad, grad, value=1 - beta2)
        bias1 = 1 - beta1 ** self.steps
        bias2_sqrt = math.sqrt(1 - beta2 ** self.steps)
        denom = self.exp_avg_sq.sqrt().div_(bias2_sqrt).add_(self.eps)
        self.flat.addcdiv_(self.exp_avg, denom, value=-self.lr / bias1)
