"""Export a found reward as a standalone Python module that does not import rewardsmith.

The module holds the reward code as it was trained, a docstring with the task, its fitness and
the meaning of every argument, and for gymnasium envs ``SOURCES`` (where each argument sits in
an observation or ``info``) with ``reward_from_step(obs, info, action)``, so any training
script can compute the reward from a plain gymnasium step. It needs only torch (and numpy
for ``reward_from_step``).

``--format eureka`` writes the reward in Eureka's form instead (:mod:`rewardsmith.eureka_export`).
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

from .contract import with_prelude_imports
from .envs.description import EnvDescription
from .errors import RewardsmithError
from .pyparse import parse
from .runs import RunDir
from .task import TaskSpec

_STEP_HELPER = '''

def reward_from_step(obs, info, action):
    """``compute_reward`` on one gymnasium step of a single env: ``(total, {name: value})`` as floats.

    ``obs`` is the observation the step returned (flattened if it is not a flat array), ``info``
    the step's info dict and ``action`` the action taken.
    """
    import inspect

    import numpy as np

    flat = torch.as_tensor(np.asarray(obs, dtype=np.float32).reshape(1, -1))
    schema = getattr(compute_reward, "schema", None)  # a TorchScript function has no Python signature
    wanted = [a.name for a in schema.arguments] if schema is not None else inspect.signature(compute_reward).parameters
    values = {}
    for name, (kind, where) in SOURCES.items():
        if name not in wanted:
            continue
        if kind == "info":  # a number, or a vector (a model quantity such as a body position)
            values[name] = torch.as_tensor(np.asarray(info[where], dtype=np.float32)).reshape(1, *np.shape(info[where]))
        elif isinstance(where, tuple):
            values[name] = flat[:, where[0]:where[1]]
        else:
            values[name] = flat[:, where]
    act = torch.as_tensor(np.asarray(action, dtype=np.float32)).reshape(1, -1)
    values["action"] = act.reshape(1) if ACTION_IS_DISCRETE else act
    total, components = compute_reward(**{name: values[name] for name in wanted})
    return float(total[0]), {k: float(v[0]) for k, v in components.items()}
'''


def export_module(code: str, task: TaskSpec, description: EnvDescription, origin: str,
                  fitness: float | None = None, layout=None) -> str:
    """The text of a standalone module for ``code`` found for ``task``."""
    try:
        parse(code)
    except SyntaxError as exc:
        raise RewardsmithError(f"the reward does not parse: line {exc.lineno}: {exc.msg}") from None
    score = "" if fitness is None else f" (fitness {fitness:.3f}, success threshold " \
                                       f"{task.fitness.success_threshold:g})"
    lines = [
        f"Reward for {task.name!r}, found by rewardsmith{score}.",
        "",
        "Task: " + " ".join(task.description.split()),
        f"Environment: {description.id}",
        f"Fitness: {task.fitness.expression}",
        f"From: {origin}",
        "",
        "compute_reward(...) takes these named arguments (tensors, first dimension = number of envs):",
    ]
    for v in description.variables:
        shape = "".join(f", {d}" for d in v.shape)
        lines.append(f"  {v.name} (n{shape}) [{v.unit}]: {v.description}")
    lines.append(f"  action: {description.action.description}")
    lines += ["", "It returns (total reward of shape (n,), {component name: tensor of shape (n,)}).",
              "It needs only torch (and numpy for reward_from_step), not rewardsmith."]
    doc = '"""' + "\n".join(lines).replace('"""', "'''") + '\n"""\n'
    futures, body = _split_future(with_prelude_imports(code.strip() + "\n"))
    out = doc + futures + "\n" + body
    if layout is not None:
        sources = {v.name: ("info", v.info) if v.info is not None else ("obs", v.obs) for v in layout.description.variables}
        out += "\n\n# Where each argument sits in a gymnasium step of " + description.id.split(":", 1)[-1] + "\n"
        out += "SOURCES = " + _pretty(sources) + "\n"
        out += f"ACTION_IS_DISCRETE = {description.action.kind == 'discrete'}\n"
        out += _STEP_HELPER
    compile(out, "reward.py", "exec", dont_inherit=True)  # parses, with __future__ imports in place
    return out


def _split_future(code: str) -> tuple[str, str]:
    """``from __future__`` lines (which must come first in the module), and the rest."""
    lines = code.splitlines(keepends=True)
    future = {i for node in parse(code).body if isinstance(node, ast.ImportFrom) and node.module == "__future__"
              for i in range(node.lineno - 1, node.end_lineno or node.lineno)}
    return "".join(lines[i] for i in sorted(future)), "".join(line for i, line in enumerate(lines) if i not in future)


def _pretty(sources: dict) -> str:
    items = [f"    {name!r}: {value!r}," for name, value in sources.items()]
    return "{\n" + "\n".join(items) + "\n}"


@dataclass(frozen=True)
class BestReward:
    """A run's best reward and what an export says about it."""

    task: TaskSpec
    description: EnvDescription
    code: str
    origin: str  # the run's folder name and the reward's file in it
    fitness: float | None


def best_reward(run_path: Path) -> BestReward:
    run, task, _ = RunDir.open(run_path)
    summary = run.load_summary()
    if summary is None or summary.best is None:
        raise RewardsmithError(f"{run_path} has no best reward yet (no candidate finished training)")
    best = summary.best
    code = (run.path / best.reward_file).read_text()
    return BestReward(task, task.env.describe(), code, f"{run.path.name}/{best.reward_file}", best.fitness)


def export_run(run_path: Path) -> str:
    """The best reward of a run as a standalone module."""
    best = best_reward(run_path)
    task = best.task
    layout = None
    if task.env.backend == "gymnasium":
        from .envs.gymnasium.layout import layout as gym_layout

        layout = gym_layout(task.env.id, task.env.variables, task.env.kwargs)
    return export_module(best.code, task, best.description, best.origin, best.fitness, layout)
