"""The options of a solve: one typed record, filled by the CLI and the library alike.

They are checked when they are given (unknown names and bad values are refused with the option's
name), stored in ``run.json``, and on ``--resume`` merged with what is given again. They say how
the search runs; *what* it searches (iterations, samples, budgets, limits) is the task's, and
task fields are changed with overrides (``--set``, ``--iterations``, ...).

>>> SolveOptions(sandbox="bwrap").executor
'local'
>>> SolveOptions.build(sandbox="vm")
Traceback (most recent call last):
...
rewardsmith.errors.OptionError: --sandbox: 'vm' is not one of auto, bwrap, docker, process
"""

from __future__ import annotations

import re
from typing import Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from .errors import OptionError

SandboxName = Literal["auto", "bwrap", "docker", "process"]
ExecutorName = Literal["local", "ray"]
FeedbackName = Literal["metric", "human", "synthetic", "vlm"]
DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


class SolveOptions(BaseModel):
    """How a solve runs (not what it searches: that is the task)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str = Field("builtin", min_length=1, description="reward designer: 'builtin' (offline) or a litellm model "
                                                          "name such as openai/gpt-4o")
    api_base: str | None = Field(None, description="base URL of an OpenAI/Anthropic-compatible server")
    sandbox: SandboxName = Field("auto", description="where reward code runs (auto: the safest that works here)")
    executor: ExecutorName = Field("local", description="where candidates train: this machine or a Ray cluster")
    ray_address: str | None = Field(None, description="with executor ray: the cluster to join (default: start one)")
    parallel: int | None = Field(None, ge=1, description="candidates trained at once (default: an iteration's, "
                                                         "2 per core at most)")
    feedback: FeedbackName = Field("metric", description="how candidates are judged")
    feedback_noise: float | None = Field(None, ge=0, description="noise of synthetic feedback, as a fraction of the "
                                                                "success threshold (default 0.1)")
    vlm_model: str | None = Field(None, min_length=1, description="with feedback vlm: the litellm model that ranks "
                                                                  "the rollouts (default: --model, if an LLM)")
    vlm_api_base: str | None = Field(None, description="with feedback vlm: base URL of the VLM's server")
    device: str = Field("auto", description="auto (CUDA when present), cpu, cuda or cuda:N")
    final_seeds: int = Field(0, ge=0, description="retrain the best reward with this many other seeds at the end")
    max_cost: float | None = Field(None, gt=0, description="stop cleanly once the LLM has cost this many US dollars")
    llm_critic: bool | None = Field(None, description="an LLM reviews each reward before training "
                                                      "(default: the task's search.llm_critic)")
    cold_workers: bool = Field(False, description="a fresh sandbox (a new Python importing torch) for every job, "
                                                  "instead of jobs forked from warm sandboxed workers")

    @field_validator("api_base")
    @classmethod
    def _url(cls, value: str | None) -> str | None:
        if value is not None and not re.match(r"^https?://[^/\s]+", value):
            raise ValueError(f"{value!r} is not a URL (write it as http://HOST:PORT or https://...)")
        return value

    @field_validator("device")
    @classmethod
    def _device(cls, value: str) -> str:
        if not DEVICE.match(value):
            raise ValueError(f"{value!r} is not a device (auto, cpu, cuda or cuda:N)")
        return value

    @model_validator(mode="after")
    def _vlm(self) -> SolveOptions:
        if self.feedback == "vlm" and self.vlm_model is None and self.model == "builtin":
            raise ValueError("--feedback vlm needs a vision-language model: --vlm-model MODEL (such as "
                             "openai/gpt-4o-mini), or an LLM designer (--model) that takes images")
        if self.feedback != "vlm" and (self.vlm_model or self.vlm_api_base):
            given = "--vlm-model" if self.vlm_model else "--vlm-api-base"
            raise ValueError(f"{given} is used only with --feedback vlm")
        return self

    def vlm(self) -> tuple[str, str | None]:
        """The VLM judge's model and base URL: ``vlm_model``, else the designer's model and URL."""
        if self.vlm_model is not None:
            return self.vlm_model, self.vlm_api_base
        return self.model, self.vlm_api_base or self.api_base

    @classmethod
    def build(cls, **given: Any) -> SolveOptions:
        """Options from keyword arguments where ``None`` means "not given" (the default)."""
        return cls.checked({k: v for k, v in given.items() if v is not None})

    @classmethod
    def checked(cls, data: dict[str, Any]) -> SolveOptions:
        """Validate ``data``, turning the first problem into a one-line :class:`OptionError`."""
        try:
            return cls.model_validate(data)
        except ValidationError as exc:
            raise OptionError(_option_problem(exc)) from None

    @classmethod
    def stored(cls, data: dict[str, Any]) -> SolveOptions:
        """Options as ``run.json`` keeps them (names this version does not know are left out)."""
        return cls.checked({k: v for k, v in data.items() if k in cls.model_fields})

    def merged(self, **given: Any) -> SolveOptions:
        """These options with the ones given (not ``None``) replaced, checked again (a resumed run
        that leaves vlm feedback also leaves its VLM behind)."""
        given = {k: v for k, v in given.items() if v is not None}
        stored = self.model_dump()
        if given.get("feedback", "vlm") != "vlm":
            stored.update(vlm_model=None, vlm_api_base=None)
        return self.checked({**stored, **given})

    def changes(self, other: SolveOptions) -> dict[str, tuple[Any, Any]]:
        """``{name: (mine, other's)}`` for every option that differs."""
        return {k: (getattr(self, k), getattr(other, k)) for k in type(self).model_fields
                if getattr(self, k) != getattr(other, k)}


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def _option_problem(exc: ValidationError) -> str:
    err = exc.errors()[0]
    name = str(err["loc"][0]) if err["loc"] else "options"
    if err["type"] == "extra_forbidden":
        return f"{flag(name)}: unknown option"
    if err["type"] == "literal_error":
        choices = ", ".join(get_args(SolveOptions.model_fields[name].annotation))
        return f"{flag(name)}: {err['input']!r} is not one of {choices}"
    message = err["msg"].removeprefix("Value error, ")
    return f"{flag(name)}: {message}" if err["loc"] else message  # a check of several options names them
