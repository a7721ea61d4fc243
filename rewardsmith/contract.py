"""The reward contract, as both sides read it: the host's critic (which parses reward code and
never runs it) and the guest's loader (which runs it inside a sandbox). Torch-free.

A reward is a module that defines ``compute_reward``; its parameters are named after the env's
state variables (any subset, any order) plus ``action``; it returns ``(total, components)``, one
value per env in each.

>>> bind_arguments(["pole_angle", "action"], ["pole_angle", "cart_pos", "action"])
['pole_angle', 'action']
>>> bind_arguments(["pole_angel"], ["pole_angle", "action"])
Traceback (most recent call last):
...
rewardsmith.errors.RewardCodeError: unknown argument 'pole_angel' (known: pole_angle, action)

The forms the field writes are all one contract. Eureka's rewards are TorchScript functions
written into a file that already imports ``torch``, ``math``, ``Tuple``, ``Dict`` and ``Tensor``;
those names (:data:`PRELUDE`) are there without an import, and ``@torch.jit.script`` is
recognised so the loader can run the code scripted or, where TorchScript cannot take it, as
plain Python:

>>> form = read_form('''
... @torch.jit.script
... def compute_reward(dof_pos: Tensor) -> Tuple[Tensor, Dict[str, Tensor]]:
...     up = 1.0 - dof_pos[:, 1] ** 2
...     return up, {"up": up}
... ''')
>>> form.scripted, form.prelude_used
(True, ('Dict', 'Tensor', 'Tuple', 'torch'))
>>> print(prelude_imports(form.prelude_used))
import torch
from torch import Tensor
from typing import Dict, Tuple
"""

from __future__ import annotations

import ast
import builtins
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from .errors import RewardCodeError
from .pyparse import parse

ENTRY_POINT = "compute_reward"
ACTION = "action"
ALLOWED_MODULES = ("torch", "math", "typing", "__future__")
ALLOWED_TEXT = "only torch, math and typing may be imported"

# Names a reward may use without importing them, as Eureka's reward file provides them (an
# IsaacGymEnvs task file, then ``from typing import Tuple, Dict``, ``import math``, ``import
# torch``, ``from torch import Tensor``); ``List`` and ``Optional`` as well. Name -> (module, attribute).
PRELUDE: dict[str, tuple[str, str | None]] = {
    "math": ("math", None), "torch": ("torch", None), "Tensor": ("torch", "Tensor"),
    "Dict": ("typing", "Dict"), "List": ("typing", "List"), "Optional": ("typing", "Optional"),
    "Tuple": ("typing", "Tuple"),
}
SCRIPT = "torch.jit.script"
FORBIDDEN_NAMES = frozenset({"__import__", "exec", "eval", "compile", "open", "input", "breakpoint",
                             "globals", "locals", "vars", "getattr", "setattr", "delattr", "memoryview"})
BUILTIN_NAMES = frozenset(dir(builtins)) - FORBIDDEN_NAMES


def bind_arguments(names: Sequence[str], allowed: Sequence[str]) -> list[str]:
    """The reward's parameters, each a state variable or ``action``; raise on any other name."""
    for name in names:
        if name not in allowed:
            raise RewardCodeError(f"unknown argument {name!r} (known: {', '.join(allowed)})")
    return list(names)


@dataclass(frozen=True)
class Form:
    """What the loader and the critic need to know about a reward module's shape."""

    tree: ast.Module
    scripted: bool                  # it asks for TorchScript (``@torch.jit.script`` or ``torch.jit.script(f)``)
    future_annotations: bool        # ``from __future__ import annotations``: annotations are not evaluated
    prelude_used: tuple[str, ...]   # prelude names it reads without binding them itself


def read_form(code: str) -> Form:
    """Parse ``code`` (raises ``SyntaxError``) and read its form."""
    tree = parse(code)
    aliases = module_aliases(tree)
    scripted = any(_is_script(node, aliases) for node in _script_candidates(tree))
    future = any(isinstance(n, ast.ImportFrom) and n.module == "__future__" and any(a.name == "annotations" for a in n.names)
                 for n in tree.body)
    bound = bound_names(tree)
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    return Form(tree, scripted, future, tuple(sorted(name for name in used - bound if name in PRELUDE)))


def module_aliases(tree: ast.Module) -> dict[str, str]:
    """Module-level names that stand for a module or a module's attribute, as dotted paths
    (``{"F": "torch.nn.functional", "script": "torch.jit.script"}``), the prelude included."""
    aliases = {name: module if attr is None else f"{module}.{attr}" for name, (module, attr) in PRELUDE.items()}
    for node in tree.body:
        if isinstance(node, ast.Import):
            for a in node.names:
                if a.asname:
                    aliases[a.asname] = a.name
                else:
                    root = a.name.split(".")[0]
                    aliases[root] = root
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for a in node.names:
                if a.name != "*":
                    aliases[a.asname or a.name] = f"{node.module}.{a.name}"
    return aliases


def dotted(node: ast.expr, aliases: dict[str, str]) -> str | None:
    """``torch.jit.script`` for an expression that names it through ``aliases``, else ``None``."""
    parts: list[str] = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name) or node.id not in aliases:
        return None
    return ".".join([aliases[node.id], *reversed(parts)])


def _is_script(node: ast.expr, aliases: dict[str, str]) -> bool:
    return dotted(node, aliases) == SCRIPT


def _script_candidates(tree: ast.Module) -> Iterable[ast.expr]:
    """Decorators of top-level functions and the callees of top-level ``f = g(h)`` assignments."""
    for node in tree.body:
        if isinstance(node, ast.FunctionDef):
            yield from node.decorator_list
        elif isinstance(node, ast.Assign) and isinstance(node.value, ast.Call):
            yield node.value.func


def without_script(form: Form) -> ast.Module:
    """The module as plain Python: ``@torch.jit.script`` dropped, ``torch.jit.script(f)`` read as
    ``f``. Line numbers stay as they were."""
    aliases = module_aliases(form.tree)
    body: list[ast.stmt] = []
    for node in form.tree.body:
        if isinstance(node, ast.FunctionDef):
            kept = [d for d in node.decorator_list if not _is_script(d, aliases)]
            if len(kept) != len(node.decorator_list):
                plain = ast.FunctionDef(node.name, node.args, node.body, kept, node.returns, node.type_comment,
                                        **_type_params(node))
                node = ast.copy_location(plain, node)
        elif (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and _is_script(node.value.func, aliases)
              and len(node.value.args) == 1 and not node.value.keywords):
            node = ast.copy_location(ast.Assign(node.targets, node.value.args[0], node.type_comment), node)
        body.append(node)
    return ast.fix_missing_locations(ast.Module(body=body, type_ignores=form.tree.type_ignores))


def _type_params(node: ast.FunctionDef) -> dict:
    return {"type_params": node.type_params} if hasattr(node, "type_params") else {}


def bound_names(tree: ast.AST) -> set[str]:
    """Every name the code binds anywhere (assigned, imported, defined, a parameter, an ``except``
    or ``match`` target), whatever the scope: a read of any other name can only fail."""
    bound: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            bound.add(node.id)
        elif isinstance(node, ast.arg):
            bound.add(node.arg)
        elif isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            bound.add(node.name)
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            bound.update((a.asname or a.name).split(".")[0] for a in node.names)
        elif isinstance(node, ast.ExceptHandler) and node.name:
            bound.add(node.name)
        elif isinstance(node, (ast.MatchAs, ast.MatchStar)) and node.name:
            bound.add(node.name)
        elif isinstance(node, ast.MatchMapping) and node.rest:
            bound.add(node.rest)
        elif isinstance(node, (ast.Global, ast.Nonlocal)):
            bound.update(node.names)
    return bound


def prelude_imports(names: Iterable[str]) -> str:
    """Import lines that bind these prelude names, as a file needs them outside rewardsmith."""
    wanted = sorted(set(names) & set(PRELUDE))
    modules = [PRELUDE[n][0] for n in wanted if PRELUDE[n][1] is None]
    lines = [f"import {m}" for m in sorted(modules)]
    froms: dict[str, list[str]] = {}
    for name in wanted:
        module, attr = PRELUDE[name]
        if attr is not None:
            froms.setdefault(module, []).append(attr)
    lines += [f"from {module} import {', '.join(sorted(attrs))}" for module, attrs in sorted(froms.items())]
    return "\n".join(lines)


def with_prelude_imports(code: str) -> str:
    """``code`` with import lines for the prelude names it uses without importing them, after its
    docstring and ``__future__`` imports, so that it runs outside rewardsmith too.

    >>> print(with_prelude_imports('from __future__ import annotations\\ndef f(x: Tensor):\\n    return torch.exp(x)\\n'))
    from __future__ import annotations
    import torch
    from torch import Tensor
    def f(x: Tensor):
        return torch.exp(x)
    <BLANKLINE>
    """
    try:
        form = read_form(code)
    except SyntaxError:
        return code  # the critic reports it
    if not form.prelude_used:
        return code
    at = 0  # lines before the insertion point
    for i, node in enumerate(form.tree.body):
        docstring = i == 0 and isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)
        future = isinstance(node, ast.ImportFrom) and node.module == "__future__"
        if not (docstring or future):
            break
        at = node.end_lineno or node.lineno
    lines = code.splitlines(keepends=True)
    head = "".join(lines[:at])
    if head and not head.endswith("\n"):
        head += "\n"
    return head + prelude_imports(form.prelude_used) + "\n" + "".join(lines[at:])
