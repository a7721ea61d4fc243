"""The reward contract, as both sides read it: the host's critic (which parses reward code and
never runs it) and the guest's loader (which runs it inside a sandbox). Torch-free.

A reward is a module that defines ``compute_reward``; its parameters are named after the env's
state variables (any subset, any order) plus ``action``; it returns ``(total, components)``, one
value per env in each.

>>> bind_arguments(["pole_angle", "action"], ["pole_angle", "cart_pos", "action"])
['pole_angle', 'action']
>>> bind_arguments(["pole_angel"], ["pole_angle", "action"])
Traceback (most recent call last):
...
rewardsmith.errors.RewardCodeError: unknown argument 'pole_angel' (known: pole_angle, action)
"""

from __future__ import annotations

from collections.abc import Sequence

from .errors import RewardCodeError

ENTRY_POINT = "compute_reward"
ACTION = "action"
ALLOWED_MODULES = ("torch", "math")


def bind_arguments(names: Sequence[str], allowed: Sequence[str]) -> list[str]:
    """The reward's parameters, each a state variable or ``action``; raise on any other name."""
    for name in names:
        if name not in allowed:
            raise RewardCodeError(f"unknown argument {name!r} (known: {', '.join(allowed)})")
    return list(names)
