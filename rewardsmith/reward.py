"""The reward contract: load ``compute_reward`` from text, bind arguments by name, call it.

Loading executes the code, so for code written by a model this runs only inside a sandbox
(the worker). On the host, reward code is only parsed (see :mod:`rewardsmith.critic.static`; the contract both share is
:mod:`rewardsmith.contract`).

>>> import torch
>>> code = '''
... import torch
... def compute_reward(pole_angle, action):
...     upright = torch.exp(-pole_angle.abs())
...     return upright, {"upright": upright}
... '''
>>> fn = RewardFunction(code, allowed=["pole_angle", "cart_pos", "action"])
>>> total, parts = fn({"pole_angle": torch.zeros(3), "cart_pos": torch.zeros(3)}, torch.zeros(3))
>>> total.tolist(), list(parts)
([1.0, 1.0, 1.0], ['upright'])
"""

from __future__ import annotations

import inspect
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch

from .contract import ENTRY_POINT, bind_arguments
from .errors import RewardCodeError


class RewardFunction:
    """A loaded reward function with its arguments bound to state variable names."""

    def __init__(self, code: str, allowed: Sequence[str], filename: str = "reward.py"):
        self.code = code
        namespace: dict = {"__name__": "rewardsmith_reward"}
        try:
            exec(compile(code, filename, "exec"), namespace)  # noqa: S102 - sandboxed by the caller
        except SyntaxError as exc:
            raise RewardCodeError(f"line {exc.lineno}: {exc.msg}") from None
        except Exception as exc:
            raise RewardCodeError(f"the module failed while loading: {type(exc).__name__}: {exc}") from None
        fn = namespace.get(ENTRY_POINT)
        if not callable(fn):
            raise RewardCodeError(f"no function named {ENTRY_POINT}")
        self.fn = fn
        self.parameters = _bind(fn, allowed)
        self.component_names: list[str] | None = None

    @classmethod
    def from_file(cls, path: str | Path, allowed: Sequence[str]) -> RewardFunction:
        path = Path(path)
        return cls(path.read_text(), allowed, filename=str(path))

    def __call__(self, variables: Mapping[str, torch.Tensor], action: torch.Tensor
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        kwargs = {name: action if name == "action" else variables[name] for name in self.parameters}
        return self.fn(**kwargs)

    def checked_call(self, variables: Mapping[str, torch.Tensor], action: torch.Tensor,
                     num_envs: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Call and check the output's structure and shapes (no device sync: values unchecked)."""
        out = self(variables, action)
        total, components = check_structure(out, num_envs)
        if self.component_names is None:
            self.component_names = list(components)
        elif list(components) != self.component_names:
            raise RewardCodeError(f"components changed between calls: {self.component_names} "
                                  f"then {list(components)}")
        return total, components


def _bind(fn, allowed: Sequence[str]) -> list[str]:
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError):
        raise RewardCodeError(f"{ENTRY_POINT} has no inspectable signature") from None
    parameters = list(signature.parameters.values())
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters):
        raise RewardCodeError(f"{ENTRY_POINT} must name its arguments (no *args or **kwargs)")
    return bind_arguments([p.name for p in parameters], allowed)


def check_structure(out: object, num_envs: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Check that ``out`` is ``(total, {name: tensor})`` with one value per env everywhere."""
    if not isinstance(out, tuple) or len(out) != 2:
        raise RewardCodeError(f"{ENTRY_POINT} must return a pair (total, components), "
                              f"got {type(out).__name__}")
    total, components = out
    _check_tensor(total, "the total reward", num_envs)
    if not isinstance(components, dict):
        raise RewardCodeError(f"components must be a dict of named tensors, got {type(components).__name__}")
    for name, value in components.items():
        if not isinstance(name, str):
            raise RewardCodeError(f"component names must be strings, got {name!r}")
        _check_tensor(value, f"component {name!r}", num_envs)
    return total, components


def _check_tensor(value: object, what: str, num_envs: int) -> None:
    if not isinstance(value, torch.Tensor):
        raise RewardCodeError(f"{what} must be a torch tensor, got {type(value).__name__}")
    if tuple(value.shape) != (num_envs,):
        raise RewardCodeError(f"{what} has shape {tuple(value.shape)}; expected ({num_envs},), "
                              "one value per env")
    if not value.is_floating_point():
        raise RewardCodeError(f"{what} has dtype {value.dtype}; expected a float tensor")


def check_finite(total: torch.Tensor, components: Mapping[str, torch.Tensor]) -> None:
    """Raise if any value is NaN or infinite (syncs with the device; for dry runs)."""
    for what, value in [("the total reward", total), *((f"component {k!r}", v) for k, v in components.items())]:
        if not bool(torch.isfinite(value).all()):
            raise RewardCodeError(f"{what} contains NaN or infinite values")
