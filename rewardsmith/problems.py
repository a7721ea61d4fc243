"""Validation problems in one line: every problem, each with its field, and "did you mean" for a
misspelt name.

>>> from pydantic import BaseModel, ConfigDict, ValidationError
>>> class Search(BaseModel):
...     model_config = ConfigDict(extra="forbid")
...     iterations: int = 3
...     samples: int = 4
>>> class Task(BaseModel):
...     model_config = ConfigDict(extra="forbid")
...     name: str
...     search: Search = Search()
>>> try:
...     Task.model_validate({"search": {"iteratons": 2, "samples": "many"}})
... except ValidationError as exc:
...     print(one_line("task.yaml", exc, Task))
task.yaml: 3 problems: name: field required; search.samples: Input should be a valid integer, unable to parse \
string as an integer; search.iteratons: unknown field (did you mean iterations?)
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any, get_args, get_origin

from pydantic import BaseModel, Tag, ValidationError
from pydantic_core import ErrorDetails


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (through Optional, tuples, lists and unions)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models(arg)]


def tagged_members(annotation: Any) -> dict[str, type[BaseModel]]:
    """The members of a tagged union (``Annotated[Model, Tag("name")]``) by their tag."""
    if get_origin(annotation) is Annotated:
        model, *metadata = get_args(annotation)
        tags = [m.tag for m in metadata if isinstance(m, Tag)]
        if tags and isinstance(model, type) and issubclass(model, BaseModel):
            return {tags[0]: model}
    return {tag: m for arg in get_args(annotation) for tag, m in tagged_members(arg).items()}


def locate(root: type[BaseModel], loc: tuple) -> tuple[list[str], type[BaseModel] | None, str | None]:
    """Walk ``loc`` through the fields of ``root``: the path of real fields (and list indices), the
    model the next name would be a field of, and the first part that is no field (an unknown key,
    or pydantic's tag for a member of a union that is not tagged). The tag of a tagged union's
    member (``train.sac.tau``) is no part of the path: the file says ``train.tau``."""
    path: list[str] = []
    owner: type[BaseModel] | None = root
    members: dict[str, type[BaseModel]] = {}
    for part in loc:
        if isinstance(part, int):
            path.append(str(part))
            continue
        if part in members:
            owner, members = members[part], {}
            continue
        if owner is None or part not in owner.model_fields:
            return path, owner, str(part)
        path.append(part)
        annotation = owner.model_fields[part].annotation
        models, members = _models(annotation), tagged_members(annotation)
        owner = models[0] if models else None
    return path, owner, None


def _members_at(root: type[BaseModel], path: list[str]) -> dict[str, type[BaseModel]]:
    """The tagged members of the field at ``path`` (``{}`` when it is no tagged union)."""
    owner: type[BaseModel] | None = root
    annotation: Any = None
    for part in path:
        if part.isdigit():
            continue
        if owner is None or part not in owner.model_fields:
            return {}
        annotation = owner.model_fields[part].annotation
        models = _models(annotation)
        owner = models[0] if models else None
    return tagged_members(annotation) if annotation is not None else {}


def did_you_mean(name: str, known: list[str] | Any) -> str:
    """`` (did you mean X?)`` when ``name`` is close to one of ``known``, else ``""``."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def problem(err: ErrorDetails, root: type[BaseModel]) -> str:
    """One pydantic error as ``field.path: what is wrong``."""
    path, owner, stray = locate(root, tuple(err["loc"]))
    if err["type"] == "extra_forbidden" and stray is not None:
        known = list(owner.model_fields) if owner is not None else []
        where = ".".join([*path, stray])
        others = [tag for tag, model in _members_at(root, path).items() if model is not owner and stray in model.model_fields]
        mine = [tag for tag, model in _members_at(root, path).items() if model is owner]
        if others and mine:
            return f"{where}: a field for {' and '.join(others)}, not for {mine[0]}"
        return f"{where}: unknown field{did_you_mean(stray, known) or ' (check the spelling)'}"
    where = ".".join(path) or "(top level)"
    if err["type"] == "missing":
        return f"{where}: field required"
    return f"{where}: {str(err['msg']).removeprefix('Value error, ')}"


def one_line(source: str, exc: ValidationError, root: type[BaseModel]) -> str:
    """Every problem of ``exc`` in one line (a union's members that all failed count once)."""
    seen: dict[str, None] = {}
    for err in exc.errors(include_url=False):
        text = problem(err, root)
        if text.split(": ", 1)[0] not in {s.split(": ", 1)[0] for s in seen}:
            seen[text] = None
    problems = list(seen)
    if len(problems) == 1:
        return f"{source}: {problems[0]}"
    return f"{source}: {len(problems)} problems: " + "; ".join(problems)
