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
from typing import Any, get_args

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails


def _models(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation holds (through Optional, tuples, lists and unions)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models(arg)]


def locate(root: type[BaseModel], loc: tuple) -> tuple[list[str], type[BaseModel] | None, str | None]:
    """Walk ``loc`` through the fields of ``root``: the path of real fields (and list indices), the
    model the next name would be a field of, and the first part that is no field (an unknown key,
    or pydantic's tag for a member of a union)."""
    path: list[str] = []
    owner: type[BaseModel] | None = root
    for part in loc:
        if isinstance(part, int):
            path.append(str(part))
            continue
        if owner is None or part not in owner.model_fields:
            return path, owner, str(part)
        path.append(part)
        models = _models(owner.model_fields[part].annotation)
        owner = models[0] if models else None
    return path, owner, None


def did_you_mean(name: str, known: list[str] | Any) -> str:
    """`` (did you mean X?)`` when ``name`` is close to one of ``known``, else ``""``."""
    close = difflib.get_close_matches(name, list(known), n=1, cutoff=0.6)
    return f" (did you mean {close[0]}?)" if close else ""


def problem(err: ErrorDetails, root: type[BaseModel]) -> str:
    """One pydantic error as ``field.path: what is wrong``."""
    path, owner, stray = locate(root, tuple(err["loc"]))
    if err["type"] == "extra_forbidden" and stray is not None:
        known = list(owner.model_fields) if owner is not None else []
        return f"{'.'.join([*path, stray])}: unknown field{did_you_mean(stray, known) or ' (check the spelling)'}"
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
