"""Static checks of reward code, on the host, without running it.

The code is parsed with :mod:`ast` and checked against the reward contract: it parses, defines
exactly one ``compute_reward`` whose arguments are all known names, returns a pair, and imports
only ``torch`` and ``math``. Obvious escapes (``open``, ``exec``, ``__import__``, dunder
attributes) are refused too, but safety comes from the sandbox, not from this list.

>>> static_check("def compute_reward(pole_angel):\\n    return pole_angel, {}", ["pole_angle"]).reason
"unknown argument 'pole_angel' (known: pole_angle)"
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

from ..contract import ALLOWED_MODULES, ENTRY_POINT, bind_arguments
from ..errors import RewardCodeError
from ..schemas import CriticVerdict

FORBIDDEN_NAMES = {"__import__", "exec", "eval", "compile", "open", "input", "breakpoint",
                   "globals", "locals", "vars", "getattr", "setattr", "delattr", "memoryview"}


def static_check(code: str, allowed_args: Sequence[str]) -> CriticVerdict:
    """Check ``code`` against the reward contract; ``allowed_args`` are the env's names."""
    try:
        tree = ast.parse(code)
    except SyntaxError as exc:
        return _reject(f"does not parse: {f'line {exc.lineno}: ' if exc.lineno else ''}{exc.msg}")
    except ValueError as exc:  # some Python versions raise this for null bytes
        return _reject(f"does not parse: {exc}")
    warnings: list[str] = []

    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or "."]
            for module in modules:
                if module.split(".")[0] not in ALLOWED_MODULES:
                    return _reject(f"imports {module!r}; only torch and math may be imported")
        elif isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            return _reject(f"uses {node.id}(), which a reward function must not use")
        elif isinstance(node, ast.Attribute) and node.attr.startswith("__") and node.attr.endswith("__"):
            return _reject(f"reads the attribute {node.attr}, which a reward function must not use")

    functions = [n for n in tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))
                 and n.name == ENTRY_POINT]
    if not functions:
        return _reject(f"defines no top-level function named {ENTRY_POINT}")
    if len(functions) > 1:
        return _reject(f"defines {ENTRY_POINT} {len(functions)} times; define it once")
    fn = functions[0]
    if isinstance(fn, ast.AsyncFunctionDef):
        return _reject(f"{ENTRY_POINT} must be a plain function, not async")

    args = fn.args
    if args.vararg or args.kwarg:
        return _reject(f"{ENTRY_POINT} must name its arguments (no *args or **kwargs)")
    names = [a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs)]
    if not names:
        return _reject(f"{ENTRY_POINT} takes no arguments; it must read some state variables")
    try:
        bind_arguments(names, allowed_args)
    except RewardCodeError as exc:
        return _reject(str(exc))

    returns = [n for n in _own_nodes(fn) if isinstance(n, ast.Return)]
    if not returns:
        return _reject(f"{ENTRY_POINT} has no return statement; it must return (total, components)")
    for ret in returns:
        value = ret.value
        if isinstance(value, ast.Tuple):
            if len(value.elts) != 2:
                return _reject(f"line {ret.lineno}: returns {len(value.elts)} values; it must return "
                               "a pair (total, components)")
            if isinstance(value.elts[1], (ast.List, ast.Tuple, ast.Set, ast.Constant)):
                return _reject(f"line {ret.lineno}: components must be a dict of named tensors")
        elif value is None or isinstance(value, (ast.Constant, ast.List, ast.Dict)):
            return _reject(f"line {ret.lineno}: must return a pair (total, components)")
        else:
            warnings.append(f"line {ret.lineno}: cannot see statically that this returns a pair")

    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom, ast.FunctionDef, ast.Assign, ast.AnnAssign)):
            continue
        if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant):
            continue  # docstring
        warnings.append(f"line {node.lineno}: top-level statement runs on import")
    return CriticVerdict(ok=True, stage="static", warnings=tuple(warnings))


def _own_nodes(fn: ast.FunctionDef):
    """Nodes of ``fn`` excluding those inside nested functions and lambdas."""
    stack: list[ast.AST] = [n for n in fn.body if not isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]
    while stack:
        node = stack.pop()
        yield node
        for child in ast.iter_child_nodes(node):
            if not isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
                stack.append(child)


def _reject(reason: str) -> CriticVerdict:
    return CriticVerdict(ok=False, stage="static", reason=reason)
