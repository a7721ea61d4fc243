"""Prompt templates, loaded as data from ``prompts/`` (see ``prompts/README.md``).

The templates use ``string.Template`` placeholders (``$name``), so code and JSON in them need
no escaping. They are read through the package (``rewardsmith/prompts`` links to the top-level
folder and is shipped as package data), so an installed rewardsmith finds them too.

>>> "$example_code" in template("system").template
True
>>> render("error_feedback", error="unknown argument 'x'", hint="").splitlines()[0]
"That reward function cannot be used: unknown argument 'x'"
"""

from __future__ import annotations

import functools
import importlib.resources
from pathlib import Path
from string import Template

NAMES = ("system", "initial", "refinement", "preference", "error_feedback", "critic_system", "critic",
         "analyzer_system", "analyzer", "vlm_system", "vlm", "vlm_fix")


def _folder():
    packaged = importlib.resources.files("rewardsmith") / "prompts"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "prompts"  # a checkout without the link


@functools.cache
def template(name: str) -> Template:
    if name not in NAMES:
        raise KeyError(f"no prompt template {name!r}")
    return Template((_folder() / f"{name}.md").read_text(encoding="utf-8"))


def render(name: str, **values: object) -> str:
    """The template with every placeholder filled (a missing value is a bug: KeyError)."""
    return template(name).substitute({k: str(v) for k, v in values.items()}).strip()
