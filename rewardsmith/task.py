"""Task files: YAML validated into a :class:`TaskSpec`.

Every problem in a task file becomes one :class:`~rewardsmith.errors.TaskFileError` whose
message names the file and the field (``cartpole.yaml: env.num_envs: ...``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .envs.description import StateVar
from .errors import EnvOptionError, ExpressionError, RewardsmithError, TaskFileError, UnknownEnvError
from .problems import did_you_mean, one_line
from .train.config import PPOConfig, TrainConfig


class _Loader(yaml.SafeLoader):
    """YAML 1.1 as PyYAML reads it, except that ``1e5`` is a number (as in YAML 1.2 and JSON),
    not the text "1e5"; integer fields take it when it has no fraction."""


_Loader.add_implicit_resolver(
    "tag:yaml.org,2002:float", re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def read_yaml(text: str) -> Any:
    """Parse YAML text (task files and ``--set`` values alike)."""
    return yaml.load(text, Loader=_Loader)  # noqa: S506 - a SafeLoader subclass


class _Strict(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class EnvSpec(_Strict):
    backend: str = Field(description="torch, gymnasium or isaacgym")
    id: str = Field(description="env id within the backend, e.g. CartPole or HalfCheetah-v5")
    num_envs: int = Field(64, ge=1, description="parallel envs for training")
    max_episode_steps: int | None = Field(None, ge=1, description="time limit (default: the env's)")
    kwargs: dict[str, Any] = Field(default_factory=dict, description="extra arguments for the env")
    variables: tuple[StateVar, ...] = Field(
        (), description="gymnasium only: the task's own names for the state (each from an obs index or "
                        "slice, or an info key); when given, they replace the env's registered names")
    vectorization: Literal["sync", "async"] = Field(
        "sync", description="gymnasium only: step the copies in this process (sync) or one process "
                            "each (async; pays only for slow envs on many cores)")

    @field_validator("variables")
    @classmethod
    def _task_variables(cls, variables: tuple[StateVar, ...]) -> tuple[StateVar, ...]:
        from .envs.gymnasium.naming import check_task_variable

        for v in variables:
            check_task_variable(v)
        return variables

    @model_validator(mode="after")
    def _gymnasium_options(self) -> EnvSpec:
        if self.backend != "gymnasium" and (self.variables or self.vectorization != "sync"):
            raise ValueError("variables and vectorization are only for backend gymnasium")
        return self

    @property
    def name(self) -> str:
        return f"{self.backend}:{self.id}"

    def _options(self) -> dict[str, Any]:
        options = dict(self.kwargs)
        if self.backend == "gymnasium":
            options.update(variables=self.variables, vectorization=self.vectorization)
        return options

    def describe(self):
        """The env's self-description (names a reward and the fitness may use)."""
        from . import envs

        return envs.describe(self.name, **self._options())

    def make(self, num_envs: int, device: str = "cpu", seed: int = 0):
        """Build the batched env this spec names."""
        from . import envs

        return envs.make(self.name, num_envs=num_envs, device=device, seed=seed,
                         max_episode_steps=self.max_episode_steps, **self._options())


class FitnessSpec(_Strict):
    expression: str = Field(description="ground-truth score of one episode, e.g. "
                                        "'sum(abs(pole_angle) < 0.2) / max_episode_steps'")
    success_threshold: float = Field(description="mean evaluation fitness that counts as solved")
    eval_episodes: int = Field(16, ge=1, description="evaluation episodes of the trained policy")


class ScreeningSpec(_Strict):
    """Trajectory screening: a candidate's reward is scored on stored episodes before it trains;
    one that ranks them clearly against their task fitness is not trained."""

    enabled: bool = Field(True, description="screen candidates before training (false: train every candidate "
                                            "the critic passes)")
    episodes: int = Field(64, ge=4, description="stored episodes a candidate's reward is scored on (spread over "
                                                "their fitness)")
    min_correlation: float = Field(0.0, ge=-1, le=1, description="a reward whose returns' rank correlation with the "
                                                                 "episodes' fitness is below this, and that pays the "
                                                                 "worst quarter of them more than the best, is not "
                                                                 "trained")
    random_episodes: int | None = Field(None, ge=0, description="first iteration: episodes of random policies "
                                                                "(actions drawn each step, or held 4, 16 or 64 "
                                                                "steps); unset: 64 with an LLM designer, 8 with the "
                                                                "builtin one (its rewards follow the fitness by "
                                                                "construction; they show it where episodes start)")
    probe_timesteps: int = Field(20_000, ge=0, description="first iteration, when the random policies' episodes "
                                                           "hardly differ in fitness, with an LLM designer: a probe "
                                                           "training of the "
                                                           "builtin designer's reward for this many env steps (at "
                                                           "most a tenth of train.total_timesteps) records "
                                                           "episodes that may (0: no probe)")

    @model_validator(mode="before")
    @classmethod
    def _switch(cls, data: Any) -> Any:
        """``screening: false`` (or true) is short for ``screening: {enabled: false}``."""
        return {"enabled": data} if isinstance(data, bool) else data


class SearchSpec(_Strict):
    iterations: int = Field(3, ge=1, description="design-train-reflect rounds")
    samples: int = Field(4, ge=1, description="reward candidates per round")
    llm_critic: bool = Field(False, description="an LLM reviews each candidate before training and may veto it "
                                                "(LLM designers only)")
    duplicate_correlation: float | None = Field(
        0.9999, ge=0, le=1, description="skip a candidate whose reward on a shared batch of states matches an "
                                       "already trained one up to scale and offset (rank and linear correlation "
                                       "both at least this); null: never skip")
    screening: ScreeningSpec = Field(ScreeningSpec(), description="judge candidates on stored episodes before "
                                                                  "training them")
    episode_store_mb: float = Field(64.0, ge=0, description="cap on the episodes kept in RUN/episodes/ (states and "
                                                           "actions of evaluation, training and random episodes)")


class SandboxSpec(_Strict):
    timeout_s: float = Field(900, gt=0, description="wall-clock limit per candidate job")
    memory_mb: int = Field(4096, ge=256, description="memory limit per candidate job")


class TaskSpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$", description="short name, used in run folder names")
    description: str = Field(min_length=1, description="the goal in plain language")
    env: EnvSpec = Field(description="the environment: backend, id, how many copies, its settings")
    fitness: FitnessSpec = Field(description="the ground-truth score that picks the best candidate")
    search: SearchSpec = Field(SearchSpec(), description="how many rounds and candidates the search runs")
    train: TrainConfig = Field(PPOConfig(), description="how each candidate is trained: PPO (the default) or "
                                                         "SAC settings, picked by train.algorithm")
    sandbox: SandboxSpec = Field(SandboxSpec(), description="limits of each sandboxed job")

    def with_overrides(self, **sections: dict[str, Any]) -> TaskSpec:
        """A copy with some fields of some sections replaced (CLI flags), validated again."""
        data = self.model_dump()
        for section, values in sections.items():
            data[section].update({k: v for k, v in values.items() if v is not None})
        return TaskSpec.model_validate(data)

    def with_settings(self, settings: dict[str, Any], source: str = "--set") -> TaskSpec:
        """A copy with dotted fields replaced (``{"train.learning_rate": 3e-4}``), validated
        again; a bad key or value is a :class:`TaskFileError` that names it."""
        if not settings:
            return self
        data = self.model_dump()
        for key, value in settings.items():
            *parents, last = key.split(".")
            node = data
            for i, part in enumerate(parents):
                if not isinstance(node, dict) or not isinstance(node.get(part), dict):
                    sections = [k for k, v in node.items() if isinstance(v, dict)] if isinstance(node, dict) else []
                    raise TaskFileError(f"{source}: {key}: {'.'.join(parents[:i + 1])} is not a section of the "
                                        f"task{did_you_mean(part, sections)}")
                node = node[part]
            node[last] = value
        try:
            return TaskSpec.model_validate(data)
        except ValidationError as exc:
            raise TaskFileError(_format_error(source, exc)) from None


def parse_settings(items: list[str]) -> dict[str, Any]:
    """``["train.learning_rate=3e-4", "search.samples=6"]`` as a dict; values are read as YAML."""
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise TaskFileError(f"--set {item!r}: write it as KEY=VALUE, e.g. --set train.learning_rate=3e-4")
        try:
            out[key] = read_yaml(raw) if raw.strip() else None
        except yaml.YAMLError:
            raise TaskFileError(f"--set {key}: {raw!r} is not a value (write numbers, true/false, or text)") from None
    return out


def _format_error(source: str, exc: ValidationError) -> str:
    return one_line(source, exc, TaskSpec)


def parse_task(data: Any, source: str = "task", check_env: bool = True) -> TaskSpec:
    """Validate a task given as a dict, then (unless ``check_env`` is false: reading a finished
    run needs no simulator) check its env and fitness expression."""
    if not isinstance(data, dict):
        raise TaskFileError(f"{source}: expected a mapping of fields at the top level")
    try:
        task = TaskSpec.model_validate(data)
    except ValidationError as exc:
        raise TaskFileError(_format_error(source, exc)) from None
    if check_env:
        check_task(task, source)
    return task


def check_task(task: TaskSpec, source: str = "task") -> None:
    """Cross-field checks that need the env: it exists, the fitness names its variables, and the
    trainer can drive its actions."""
    from .expressions import FitnessProgram

    try:
        description = task.env.describe()
    except EnvOptionError as exc:  # names its field: env.kwargs, env.variables
        raise TaskFileError(f"{source}: {exc}") from None
    except UnknownEnvError as exc:
        raise TaskFileError(f"{source}: env.id: {exc}") from None
    except RewardsmithError as exc:
        raise TaskFileError(f"{source}: env: {exc}") from None
    try:
        shapes = {v.name: v.shape for v in description.variables}
        shapes["action"] = () if description.action.kind == "discrete" else description.action.shape
        FitnessProgram(task.fitness.expression, set(description.variable_names), shapes=shapes)
    except ExpressionError as exc:
        raise TaskFileError(f"{source}: {exc}") from None
    if task.train.algorithm == "sac" and description.action.kind != "continuous":
        raise TaskFileError(f"{source}: train.algorithm: SAC here is for continuous actions, and {task.env.name} "
                            "has discrete ones: use ppo")


def shipped_tasks() -> dict[str, Path]:
    """The task files that come with rewardsmith, by name (``cartpole`` for ``cartpole.yaml``)."""
    folder = Path(__file__).resolve().parent / "tasks"
    return {p.stem: p for p in sorted(folder.glob("*.yaml"))}


def load_task(path: str | Path) -> TaskSpec:
    """Read and validate a task file, or a shipped task by name.

    >>> load_task("tasks/cartpole.yaml").env.name
    'torch:CartPole'
    >>> load_task("cartpole").name
    'cartpole'
    """
    path = Path(path)
    if not path.is_file():
        shipped = shipped_tasks()
        if len(path.parts) == 1 and path.suffix == "" and path.name in shipped:
            path = shipped[path.name]
        else:
            raise TaskFileError(f"{path}: no such task file (shipped tasks, usable by name: {', '.join(shipped)})")
    try:
        data = read_yaml(path.read_text())
    except yaml.YAMLError as exc:
        raise TaskFileError(f"{path}: not valid YAML{_yaml_problem(exc)}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise TaskFileError(f"{path}: cannot read it: {getattr(exc, 'strerror', None) or exc}") from None
    return parse_task(data, str(path))


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """`` at line 4, column 8: expected ',' or '}', but got ':' (in a flow mapping from line 3)``."""
    mark, context_mark = getattr(exc, "problem_mark", None), getattr(exc, "context_mark", None)
    mark = mark or context_mark
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    what = getattr(exc, "problem", None) or ""
    context = getattr(exc, "context", None)
    if context:
        started = f" from line {context_mark.line + 1}" if context_mark is not None else ""
        what += f" ({context.removeprefix('while parsing ').removeprefix('while scanning ')}{started})"
    return f"{where}: {what}" if what else where
