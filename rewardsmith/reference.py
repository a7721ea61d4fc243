"""The task file's reference, made from the pydantic models themselves (so it cannot drift):
``rewardsmith schema`` prints the JSON Schema, ``rewardsmith schema --markdown`` the tables the
README shows.

>>> print(field_table(__import__("rewardsmith.task", fromlist=["SandboxSpec"]).SandboxSpec))
| field | type | default | meaning |
|---|---|---|---|
| `timeout_s` | number > 0 | `900` | wall-clock limit per candidate job |
| `memory_mb` | integer ≥ 256 | `4096` | memory limit per candidate job |
"""

from __future__ import annotations

import json
import types
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel
from pydantic_core import PydanticUndefined

_NAMES = {int: "integer", float: "number", str: "text", bool: "true/false", type(None): "null"}


def type_name(annotation: Any) -> str:
    """``integer``, ``number or null``, ``list of integer``, ``sync or async``, ``mapping``."""
    origin = get_origin(annotation)
    if origin is Annotated:
        return type_name(get_args(annotation)[0])
    if origin is Literal:
        return " or ".join(str(a) for a in get_args(annotation))
    if origin in (Union, types.UnionType):
        return " or ".join(dict.fromkeys(type_name(a) for a in get_args(annotation)))
    if origin in (tuple, list):
        args = [a for a in get_args(annotation) if a is not Ellipsis]
        if len(set(args)) == 1 and (origin is list or Ellipsis in get_args(annotation)):
            return f"list of {type_name(args[0])}"
        return "[" + ", ".join(type_name(a) for a in args) + "]"
    if origin is dict:
        return "mapping"
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return "section" if annotation.__name__.endswith(("Spec", "Config")) else "entries (below)"
    return _NAMES.get(annotation, getattr(annotation, "__name__", str(annotation)))


def _bounds(field) -> str:
    out = []
    for item in field.metadata:
        for attr, sign in (("ge", "≥"), ("gt", ">"), ("le", "≤"), ("lt", "<")):
            value = getattr(item, attr, None)
            if value is not None:
                out.append(f"{sign} {value}")
        if getattr(item, "pattern", None):
            out.append(f"matching `{item.pattern}`")
        if getattr(item, "min_length", None):
            out.append("not empty")
    return (" " + ", ".join(out)) if out else ""


def _default(field) -> str:
    if field.is_required():
        return "required"
    if field.default_factory is not None:
        value = field.default_factory()
    else:
        value = field.default
    if value is PydanticUndefined:
        return "required"
    if isinstance(value, BaseModel):
        return "its fields' defaults"
    return f"`{json.dumps(value.tolist() if hasattr(value, 'tolist') else list(value) if isinstance(value, tuple) else value)}`"


def field_table(model: type[BaseModel]) -> str:
    rows = ["| field | type | default | meaning |", "|---|---|---|---|"]
    for name, field in model.model_fields.items():
        meaning = (field.description or "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{name}` | {type_name(field.annotation)}{_bounds(field)} | {_default(field)} | {meaning} |")
    return "\n".join(rows)


def sections() -> list[tuple[str, type[BaseModel]]]:
    """The task file's sections, top level first, each with its model (a section that is one of
    several models, told apart by a field, once for each: ``train`` for PPO and for SAC)."""
    from .envs.description import StateVar
    from .problems import tagged_members
    from .task import TaskSpec

    out: list[tuple[str, type[BaseModel]]] = [("(top level)", TaskSpec)]
    for name, field in TaskSpec.model_fields.items():
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            out.append((name, field.annotation))
            for sub, inner in field.annotation.model_fields.items():  # e.g. search.screening
                if isinstance(inner.annotation, type) and issubclass(inner.annotation, BaseModel):
                    out.append((f"{name}.{sub}", inner.annotation))
        for tag, model in tagged_members(field.annotation).items():
            out.append((f"{name}` with `algorithm: {tag}", model))
    out.append(("env.variables (each item)", StateVar))
    return out


def markdown() -> str:
    """The reference of every task field, as the README shows it."""
    return "\n\n".join(f"`{name}`\n\n{field_table(model)}" if name != "(top level)" else field_table(model)
                       for name, model in sections())


def json_schema() -> dict:
    from .task import TaskSpec

    return TaskSpec.model_json_schema()
