"""Names a reward reads that nothing gives it, found on the parsed module (nothing runs).

A name is there if the code binds it anywhere, if it is a builtin, or if it is in the
contract's prelude (``torch``, ``math``, ``Tensor``, ``Tuple``, ...). Annotations that Python
never evaluates (inside functions, or every annotation under ``from __future__ import
annotations``) may name anything. Names from ``math`` and ``typing`` are checked against those
modules (they are the standard library's, cheap to look at); names from torch are left to the
dry run, since knowing them means importing torch.

>>> from rewardsmith.contract import read_form
>>> first_problem(read_form("def compute_reward(x):\\n    return np.exp(x), {}"))
"line 2: 'np' is not defined (only torch, math and typing may be imported)"
>>> first_problem(read_form("import math\\ndef compute_reward(x):\\n    return x * math.tau, {}")) is None
True
"""

from __future__ import annotations

import ast
import importlib

from ..contract import ALLOWED_TEXT, BUILTIN_NAMES, PRELUDE, Form, bound_names

CHECKED_MODULES = ("math", "typing")  # standard modules whose names are looked up here
# isaacgym.torch_utils, which IsaacGymEnvs task files import with `*` and Eureka's rewards call
ISAACGYM_HELPERS = frozenset({
    "quat_mul", "quat_conjugate", "quat_apply", "quat_rotate", "quat_rotate_inverse", "quat_unit", "quat_from_angle_axis",
    "quat_from_euler_xyz", "get_euler_xyz", "quat_axis", "normalize", "normalize_angle", "tensor_clamp", "to_torch",
    "torch_rand_float", "torch_random_dir_2", "scale", "unscale", "copysign", "tf_combine", "tf_apply", "tf_inverse",
    "tf_vector", "get_basis_vector", "my_quat_rotate", "compute_heading_and_up", "compute_rot",
})


def first_problem(form: Form) -> str | None:
    """Why the module would fail on a name, in one line, or ``None``."""
    tree = form.tree
    star = [n for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and any(a.name == "*" for a in n.names)]
    known = set(BUILTIN_NAMES) | set(PRELUDE) | bound_names(tree)
    for imp in star:
        if imp.module not in CHECKED_MODULES:
            return None  # `from torch import *`: which names it gives is torch's business
        known |= set(_public_names(imp.module))
    problem = _missing_imported(tree)
    if problem:
        return problem
    skip = _unevaluated(tree, form.future_annotations)
    for node in _in_order(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Load) and id(node) not in skip:
            if node.id not in known:
                return f"line {node.lineno}: {node.id!r} is not defined ({_hint(node.id)})"
    return _missing_attribute(tree, skip)


def _hint(name: str) -> str:
    if name in ISAACGYM_HELPERS:
        return "isaacgym.torch_utils is not available here; write it with torch"
    return ALLOWED_TEXT


def _public_names(module: str) -> list[str]:
    mod = importlib.import_module(module)
    return list(getattr(mod, "__all__", None) or [n for n in dir(mod) if not n.startswith("_")])


def _missing_imported(tree: ast.Module) -> str | None:
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module in CHECKED_MODULES and not node.level:
            module = importlib.import_module(node.module)
            for a in node.names:
                if a.name != "*" and not hasattr(module, a.name):
                    return f"line {node.lineno}: {node.module} has no name {a.name!r} to import"
    return None


def _missing_attribute(tree: ast.Module, skip: set[int]) -> str | None:
    """``math.sqroot``: an attribute of a standard module that it does not have."""
    rebound = _rebound(tree)
    aliases: dict[str, str] = {}
    for statement in tree.body:
        if isinstance(statement, ast.Import):
            for a in statement.names:
                if a.name in CHECKED_MODULES:
                    aliases[a.asname or a.name] = a.name
    if "math" not in bound_names(tree):
        aliases["math"] = "math"  # from the prelude
    aliases = {k: v for k, v in aliases.items() if k not in rebound}
    for node in _in_order(tree):
        if (isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id in aliases
                and isinstance(node.ctx, ast.Load) and id(node) not in skip):
            module = aliases[node.value.id]
            if not hasattr(importlib.import_module(module), node.attr):
                return f"line {node.lineno}: {module} has no attribute {node.attr!r}"
    return None


def _rebound(tree: ast.Module) -> set[str]:
    """Names bound other than by a module-level ``import`` (a parameter, an assignment...)."""
    rest = [n for n in tree.body if not isinstance(n, ast.Import)]
    return bound_names(ast.Module(body=rest, type_ignores=[]))


def _unevaluated(tree: ast.Module, future_annotations: bool) -> set[int]:
    """Ids of the nodes inside annotations that Python never evaluates."""
    roots: list[ast.expr] = []

    def visit(node: ast.AST, in_function: bool) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, ast.AnnAssign) and (in_function or future_annotations):
                roots.append(child.annotation)
            if future_annotations:
                if isinstance(child, ast.arg) and child.annotation is not None:
                    roots.append(child.annotation)
                elif isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)) and child.returns is not None:
                    roots.append(child.returns)
            visit(child, in_function or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)))

    visit(tree, False)
    return {id(n) for root in roots for n in ast.walk(root)}


def _in_order(tree: ast.Module) -> list[ast.expr]:
    nodes = [n for n in ast.walk(tree) if isinstance(n, ast.expr)]
    return sorted(nodes, key=lambda n: (n.lineno, n.col_offset))
