"""rewardsmith: reward functions for reinforcement learning, written as code and refined by training.

The library API (``import rewardsmith as rs``); heavy parts (torch, gymnasium) load on first use.

- ``rs.solve(task)`` searches for a reward (as ``rewardsmith solve``) and returns a ``SolveResult``;
- ``rs.train_reward(task, reward)`` trains and scores one reward;
- ``rs.describe(env)`` lists the named state a reward may use (an env object or a name);
- ``rs.wrap(env, reward)`` puts a reward on a gymnasium env you already have;
- ``rs.export(run)`` writes the best reward as a module that does not import rewardsmith;
- ``rs.evaluate_run(run)`` evaluates the best candidate over several seeds;
- ``rs.load_task(path)`` reads a task file.
"""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["SolveResult", "describe", "evaluate_run", "export", "load_task", "solve", "train_reward", "wrap"]

_API = {"SolveResult", "describe", "evaluate_run", "export", "solve", "train_reward", "wrap"}


def __getattr__(name: str):
    if name in _API:
        from . import api

        return getattr(api, name)
    if name == "load_task":
        from .task import load_task

        return load_task
    raise AttributeError(f"module 'rewardsmith' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
