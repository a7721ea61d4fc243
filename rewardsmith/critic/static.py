"""Static checks of reward code, on the host, without running it.

The code is parsed with :mod:`ast` (and compiled to bytecode, which runs nothing, so every
syntax error the loader would meet is found here) and checked against the reward contract
(:mod:`rewardsmith.contract`): it defines exactly one ``compute_reward`` whose arguments are all
known names, returns a pair, imports only ``torch``, ``math`` and ``typing``, and reads no name
that nothing defines. The forms the field writes pass: helpers and constants at module level,
annotations, ``from __future__ import annotations``, and Eureka's ``@torch.jit.script``
functions with ``Tuple``/``Dict``/``Tensor`` used without an import. Obvious escapes (``open``,
``exec``, ``__import__``, dunder attributes) are refused too, but safety comes from the sandbox,
not from this list.

The loader (:mod:`rewardsmith.reward`) agrees with these rules: code that passes them loads and
binds its arguments in the sandbox; what is left for the dry run is what only running it can
show (torch's own names, shapes, values, exceptions).

>>> static_check("def compute_reward(pole_angel):\\n    return pole_angel, {}", ["pole_angle"]).reason
"unknown argument 'pole_angel' (known: pole_angle)"
"""

from __future__ import annotations

import ast
from collections.abc import Sequence

from ..contract import (
    ALLOWED_MODULES,
    ALLOWED_TEXT,
    ENTRY_POINT,
    FORBIDDEN_NAMES,
    SCRIPT,
    Form,
    bind_arguments,
    dotted,
    module_aliases,
    read_form,
)
from ..errors import RewardCodeError
from ..schemas import CriticVerdict
from .names import first_problem


def static_check(code: str, allowed_args: Sequence[str]) -> CriticVerdict:
    """Check ``code`` against the reward contract; ``allowed_args`` are the env's names."""
    try:
        compile(code, "reward.py", "exec", dont_inherit=True)  # bytecode only: nothing runs
        form = read_form(code)
    except SyntaxError as exc:
        return _reject(f"does not parse: {f'line {exc.lineno}: ' if exc.lineno else ''}{exc.msg}")
    except (ValueError, RecursionError, MemoryError) as exc:  # ValueError: null bytes, on some Pythons
        return _reject(f"does not parse: {exc}")
    tree = form.tree
    warnings: list[str] = []

    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            modules = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or "."]
            for module in modules:
                if module.split(".")[0] not in ALLOWED_MODULES:
                    return _reject(f"imports {module!r}; {ALLOWED_TEXT}")
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

    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)) and not _scripts_entry_point(node, form):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(n, ast.Name) and n.id == ENTRY_POINT for t in targets for n in ast.walk(t)):
                return _reject(f"line {node.lineno}: assigns to {ENTRY_POINT}; define it once, with def")
    if any(isinstance(n, (ast.Yield, ast.YieldFrom)) for n in _own_nodes(fn)):
        return _reject(f"{ENTRY_POINT} yields, which makes it a generator; it must return (total, components)")

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

    problem = first_problem(form)
    if problem:
        return _reject(problem)

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
        if isinstance(node, ast.Raise):
            return _reject(f"line {node.lineno}: raises an exception as the module loads")
        warnings.append(f"line {node.lineno}: top-level statement runs on import")
    return CriticVerdict(ok=True, stage="static", warnings=tuple(warnings))


def _scripts_entry_point(node: ast.stmt, form: Form) -> bool:
    """``compute_reward = torch.jit.script(compute_reward)``."""
    if not (isinstance(node, ast.Assign) and isinstance(node.value, ast.Call) and len(node.value.args) == 1):
        return False
    arg = node.value.args[0]
    return (dotted(node.value.func, module_aliases(form.tree)) == SCRIPT and isinstance(arg, ast.Name)
            and arg.id == ENTRY_POINT)


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
