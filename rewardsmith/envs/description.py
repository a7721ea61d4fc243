"""How an environment describes itself: named state variables, actions, terminations.

Pure data (no torch), so the host can validate tasks and prompt designers without importing
any simulator.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class StateVar(BaseModel):
    """One named quantity a reward may read, per env, and (for backends that name the entries of
    an observation, such as gymnasium) where its value comes from: an ``obs`` index or slice, or
    an ``info`` key. The same record is an env's own description, a registry entry and a task
    file's ``env.variables`` item.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(description="the name a reward argument and the fitness use (a Python identifier)")
    description: str = Field("", description="what it means, in words (the designer reads it)")
    unit: str = Field("-", description="its unit, e.g. m, rad, m/s")
    shape: tuple[int, ...] = Field(default=(), description="per-env shape; () is a scalar per env")
    low: float | None = Field(default=None, description="lowest value it takes (bound or typical)")
    high: float | None = Field(default=None, description="highest value it takes (bound or typical)")
    obs: int | tuple[int, int] | None = Field(
        None, description="index, or [start, stop) slice, of the flattened observation it is read from")
    info: str | None = Field(None, description="key of the step's info dict it is read from")

    @model_validator(mode="before")
    @classmethod
    def _shape_of_slice(cls, data):
        """A slice of the observation is a vector: its shape follows from the slice."""
        if isinstance(data, dict) and isinstance(data.get("obs"), (list, tuple)) and not data.get("shape"):
            start, stop = data["obs"]
            if isinstance(start, int) and isinstance(stop, int):
                data = {**data, "shape": (stop - start,)}
        return data

    @property
    def source(self) -> str | None:
        """Where the value comes from, in words (``obs[3]``, ``obs[4:7]``, ``info['x_velocity']``)."""
        if isinstance(self.obs, tuple):
            return f"obs[{self.obs[0]}:{self.obs[1]}]"
        if self.obs is not None:
            return f"obs[{self.obs}]"
        return f"info[{self.info!r}]" if self.info is not None else None

    def shifted(self, offset: int) -> StateVar:
        """The same variable read ``offset`` entries further into the observation."""
        if self.obs is None or not offset:
            return self
        obs = (self.obs[0] + offset, self.obs[1] + offset) if isinstance(self.obs, tuple) else self.obs + offset
        return self.model_copy(update={"obs": obs})


class ActionSpec(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")

    kind: Literal["discrete", "continuous"]
    n: int | None = Field(default=None, description="number of choices (discrete)")
    shape: tuple[int, ...] = ()
    low: tuple[float, ...] | None = None
    high: tuple[float, ...] | None = None
    description: str = ""

    @property
    def size(self) -> int:
        if self.kind == "discrete":
            assert self.n is not None
            return self.n
        return int(self.shape[0])


class EnvDescription(BaseModel):
    """The compact, named description of an env that designers and users read."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    id: str
    summary: str
    variables: tuple[StateVar, ...]
    action: ActionSpec
    terminations: dict[str, str] = Field(
        default_factory=dict, description="reason -> step expression that ends an episode")
    max_episode_steps: int
    observation: str = ""
    dt: float | None = Field(default=None, description="seconds of simulated time per step")
    structure: str = Field(default="", description="a brief outline of the simulated model (its body tree)")

    @property
    def variable_names(self) -> list[str]:
        return [v.name for v in self.variables]

    @property
    def reward_arguments(self) -> list[str]:
        """Names a reward function may take: every state variable plus ``action``."""
        return [*self.variable_names, "action"]

    def variable(self, name: str) -> StateVar | None:
        return next((v for v in self.variables if v.name == name), None)

    def to_text(self) -> str:
        """The description as plain text, for prompts and ``rewardsmith describe``."""
        lines = [f"Environment {self.id}: {self.summary}"]
        if self.dt:
            lines.append(f"Time step: {self.dt} s; episodes last at most {self.max_episode_steps} steps.")
        else:
            lines.append(f"Episodes last at most {self.max_episode_steps} steps.")
        if self.structure:
            lines.append(self.structure)
        lines.append("State variables (reward arguments; first dimension is the number of envs):")
        for v in self.variables:
            shape = "(num_envs" + "".join(f", {d}" for d in v.shape) + ")"
            rng = ""
            if v.low is not None or v.high is not None:
                rng = f", range [{_num(v.low)}, {_num(v.high)}]"
            lines.append(f"  {v.name}: {shape} [{v.unit}]{rng} - {v.description}")
        a = self.action
        if a.kind == "discrete":
            lines.append(f"  action: (num_envs,) float, the chosen index in 0..{a.size - 1} - {a.description}")
        else:
            low, high = (a.low or (None,))[0], (a.high or (None,))[0]
            lines.append(f"  action: (num_envs, {a.shape[0]}) float in [{_num(low)}, {_num(high)}] - {a.description}")
        if self.terminations:
            lines.append("An episode ends early when: " + "; ".join(
                f"{expr} ({name})" for name, expr in self.terminations.items()))
        return "\n".join(lines)


def _num(x: float | None) -> str:
    return "-inf" if x is None else f"{x:g}"
