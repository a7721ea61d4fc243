"""Isaac-Gym-style ``VecTask`` envs behind the rewardsmith env interface (the ``isaacgym`` backend).

An IsaacGymEnvs task keeps its state in tensors on the device (``obs_buf``, ``rew_buf``,
``reset_buf``, ``progress_buf`` and the task's own attributes such as ``dof_pos`` or
``root_states``). Eureka's rewards take those attributes as arguments, named as the attributes
are; so do ours here: each state variable *is* a task attribute, and a reward written for
Eureka (``compute_reward(dof_pos, dof_vel)`` returning ``(total, components)``) runs as is.

What the adapter does on each ``step``: pass the clipped actions to ``task.step``; read every
variable (cloned: the task's reset writes into the same tensors) and the observation while the
done envs still hold their last state; then reset those envs at once with ``reset_idx`` and
``compute_observations``, so the returned ``obs`` starts their next episode. The task's own
``rew_buf`` is ignored. IsaacGymEnvs itself resets done envs at the start of the next step;
resetting right away changes no dynamics, it only moves that work earlier.

``isaacgym:MODULE:FUNCTION`` names a factory ``FUNCTION(num_envs, device, seed,
max_episode_steps, **kwargs)`` that returns a task object; ``isaacgym:NAME`` (no colon) builds
IsaacGymEnvs' task ``NAME`` with ``isaacgymenvs.make`` (needs Isaac Gym and a GPU machine; not
tested here, where Isaac Gym cannot be installed). A task class may set
``rewardsmith_variables = {attribute: meaning}`` to choose and explain the variables;
otherwise every tensor attribute with one row per env is one.
"""

from __future__ import annotations

import importlib
import json
import subprocess
import sys
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any, Protocol

from ...errors import RewardsmithError, UnknownEnvError
from ..description import ActionSpec, EnvDescription, StateVar

# VecTask bookkeeping, never reward inputs
BOOKKEEPING = frozenset({"obs_buf", "rew_buf", "reset_buf", "progress_buf", "timeout_buf", "randomize_buf",
                         "states_buf", "actions", "extras", "obs_dict"})
DESCRIBE_ENVS = 2


class VecTaskLike(Protocol):
    """What the adapter uses of an IsaacGymEnvs ``VecTask`` (attributes and methods)."""

    num_envs: int
    num_actions: int
    max_episode_length: int
    obs_buf: Any   # (num_envs, num_obs) tensor
    reset_buf: Any  # (num_envs,) tensor, nonzero where the episode ended
    progress_buf: Any

    def step(self, actions): ...
    def reset_idx(self, env_ids): ...
    def compute_observations(self): ...


def tensor_attributes(task: Any, num_envs: int) -> dict[str, tuple[int, ...]]:
    """Tensor attributes with one row per env, as ``{name: per-env shape}``."""
    import torch

    out = {}
    for name, value in vars(task).items():
        if name.startswith("_") or name in BOOKKEEPING or not isinstance(value, torch.Tensor):
            continue
        if value.dim() >= 1 and value.shape[0] == num_envs and value.is_floating_point():
            out[name] = tuple(int(d) for d in value.shape[1:])
    return out


def describe_task(task: Any, env_id: str, variables: Mapping[str, str] | Sequence[str] | None = None,
                  summary: str | None = None) -> EnvDescription:
    """The description of a live task object: its chosen tensor attributes and its action bounds."""
    n = int(task.num_envs)
    shapes = tensor_attributes(task, n)
    chosen = variables if variables is not None else getattr(task, "rewardsmith_variables", None)
    if chosen is None:
        meanings = {name: f"the task attribute self.{name}" for name in shapes}
    elif isinstance(chosen, Mapping):
        meanings = dict(chosen)
    else:
        meanings = {name: f"the task attribute self.{name}" for name in chosen}
    missing = [name for name in meanings if name not in shapes]
    if missing:
        raise RewardsmithError(f"{env_id}: no float tensor attribute with one row per env named "
                               f"{', '.join(missing)} (found: {', '.join(sorted(shapes)) or 'none'})")
    clip = float(getattr(task, "clip_actions", 1.0) or 1.0)
    k = int(task.num_actions)
    return EnvDescription(
        id=env_id,
        summary=summary or getattr(task, "rewardsmith_summary", None) or f"the Isaac-Gym-style task {env_id}",
        variables=tuple(StateVar(name=name, description=meaning, shape=shapes[name])
                        for name, meaning in meanings.items()),
        action=ActionSpec(kind="continuous", shape=(k,), low=(-clip,) * k, high=(clip,) * k,
                          description=f"{k} actions, clipped to [-{clip:g}, {clip:g}] by the task"),
        max_episode_steps=int(task.max_episode_length),
        observation=f"the task's obs_buf ({int(task.obs_buf.shape[-1])} numbers)",
    )


class VecTaskAdapter:
    """A VecTask-style task as a rewardsmith env (``reset``, ``step`` -> ``StepResult``).

    >>> from rewardsmith.envs.isaacgym.example import CartpoleVecTask
    >>> env = VecTaskAdapter(CartpoleVecTask(num_envs=4))
    >>> env.description.variable_names
    ['dof_pos', 'dof_vel']
    >>> step = env.step(env.reset()[:, :1] * 0)
    >>> tuple(step.variables["dof_pos"].shape), tuple(step.obs.shape)
    ((4, 2), (4, 4))
    """

    def __init__(self, task: VecTaskLike, env_id: str = "isaacgym:task",
                 variables: Mapping[str, str] | Sequence[str] | None = None, summary: str | None = None):
        import torch

        self.task = task
        self.description = describe_task(task, env_id, variables, summary)
        self.num_envs = int(task.num_envs)
        self.device = task.obs_buf.device
        self.dtype = torch.float32
        self.max_episode_steps = int(task.max_episode_length)
        self.obs_dim = int(task.obs_buf.shape[-1])
        self._names = self.description.variable_names
        spec = self.description.action
        self.action_low = torch.tensor(spec.low, dtype=self.dtype, device=self.device)
        self.action_high = torch.tensor(spec.high, dtype=self.dtype, device=self.device)
        self._clip_obs = float(getattr(task, "clip_obs", float("inf")))

    @property
    def action_spec(self) -> ActionSpec:
        return self.description.action

    def _obs(self):
        import torch

        return torch.clamp(self.task.obs_buf, -self._clip_obs, self._clip_obs).to(self.dtype).clone()

    def reset(self):
        import torch

        ids = torch.arange(self.num_envs, device=self.device)
        self.task.reset_idx(ids)
        self.task.compute_observations()
        return self._obs()

    def step(self, action):
        import torch

        from ..base import StepResult

        applied = torch.clamp(action.to(self.dtype), self.action_low, self.action_high)
        _, _, reset_buf, extras = self.task.step(applied)
        variables = {name: getattr(self.task, name).to(self.dtype).clone() for name in self._names}
        final_obs = self._obs()
        done = reset_buf.to(self.device) != 0
        time_outs = (extras or {}).get("time_outs")
        if time_outs is None:
            time_outs = self.task.progress_buf >= self.max_episode_steps - 1
        truncated = done & (time_outs.to(self.device) != 0)
        terminated = done & ~truncated
        ids = done.nonzero(as_tuple=False).squeeze(-1)
        if ids.numel() > 0:
            self.task.reset_idx(ids)
            self.task.compute_observations()
        return StepResult(self._obs(), variables, applied, terminated, truncated, final_obs)


# ---------------------------------------------------------------------------------- backend


def build_task(env_id: str, num_envs: int, device: str, seed: int, max_episode_steps: int | None,
               kwargs: dict[str, Any]):
    """Instantiate the task ``env_id`` names (a factory path, or an IsaacGymEnvs task name)."""
    if ":" in env_id:
        module_name, _, attr = env_id.partition(":")
        try:
            factory = getattr(importlib.import_module(module_name), attr)
        except (ImportError, AttributeError) as exc:
            raise UnknownEnvError(f"unknown environment 'isaacgym:{env_id}': {exc}") from None
        return factory(num_envs=num_envs, device=device, seed=seed, max_episode_steps=max_episode_steps, **kwargs)
    try:
        import isaacgym  # noqa: F401  (Isaac Gym must be imported before torch)
        import isaacgymenvs
    except ImportError:
        raise UnknownEnvError(f"isaacgym:{env_id} needs Isaac Gym and IsaacGymEnvs, which are not installed; "
                              "or name a factory as isaacgym:MODULE:FUNCTION") from None
    graphics = -1 if str(device) == "cpu" else 0
    return isaacgymenvs.make(seed=seed, task=env_id, num_envs=num_envs, sim_device=device, rl_device=device,
                             graphics_device_id=graphics, headless=True, **kwargs)


class IsaacGymBackend:
    """Isaac-Gym-style tensor envs. Describing one builds it (two envs, on the CPU); on a host
    process that has not imported torch, that happens in a short-lived child process."""

    name = "isaacgym"

    def known(self) -> list[str]:
        return []

    def describe(self, env_id: str, **kwargs: Any) -> EnvDescription:
        return _describe(env_id, json.dumps(kwargs, sort_keys=True))

    def make(self, env_id: str, num_envs: int, device: str, seed: int, max_episode_steps: int | None,
             **kwargs: Any) -> VecTaskAdapter:
        task = build_task(env_id, num_envs, device, seed, max_episode_steps, kwargs)
        return VecTaskAdapter(task, env_id=f"isaacgym:{env_id}")


@lru_cache(maxsize=16)
def _describe(env_id: str, kwargs_json: str) -> EnvDescription:
    if "torch" in sys.modules:
        task = build_task(env_id, DESCRIBE_ENVS, "cpu", 0, None, json.loads(kwargs_json))
        return describe_task(task, f"isaacgym:{env_id}")
    proc = subprocess.run([sys.executable, "-m", "rewardsmith.envs.isaacgym.vectask", env_id, kwargs_json],
                          capture_output=True, text=True, timeout=600)
    if proc.returncode != 0:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1].removeprefix("error: ")
        raise UnknownEnvError(last if proc.returncode == 2 else f"could not describe isaacgym:{env_id} ({last})")
    return EnvDescription.model_validate_json(proc.stdout.strip().splitlines()[-1])


def _main(argv: list[str]) -> int:
    """``python -m rewardsmith.envs.isaacgym.vectask ENV_ID KWARGS_JSON``: print the description as JSON."""
    env_id, kwargs_json = argv
    if ":" not in env_id:
        try:
            import isaacgym  # noqa: F401  (before torch, as Isaac Gym requires)
        except ImportError:
            pass
    import torch  # noqa: F401  (so _describe builds the task in this process)

    try:
        print(_describe(env_id, kwargs_json).model_dump_json())
    except RewardsmithError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(_main(sys.argv[1:]))
