"""A small, safe expression language over batched tensors.

Task files describe the ground-truth fitness and env descriptions name their termination
conditions with expressions such as ``sum(abs(pole_angle) < 0.2095) / max_episode_steps``.
They are parsed with :mod:`ast`, checked against a whitelist, and interpreted with torch ops:
nothing is ever passed to ``eval``.

Two kinds of expression exist:

- *step* expressions use state variables (and ``action``) and give one value per env;
- the *episode* (fitness) expression reduces step expressions over an episode with an
  aggregation (``mean``, ``sum``, ``min``, ``max``, ``any``, ``all``, ``last``) and may use
  episode statistics (``episode_length``, ``max_episode_steps``, ``terminated``, ``truncated``).

>>> import torch
>>> e = StepExpression("abs(x) < 1 and y > 0", names={"x", "y"})
>>> e({"x": torch.tensor([0.5, 2.0]), "y": torch.tensor([1.0, 1.0])}).tolist()
[1.0, 0.0]
"""

from __future__ import annotations

import ast
import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from .errors import ExpressionError
from .pyparse import parse as parse_python

AGGREGATIONS = ("mean", "sum", "min", "max", "any", "all", "last")
EPISODE_NAMES = ("episode_length", "max_episode_steps", "terminated", "truncated")
CONSTANTS = {"pi": math.pi}

# name -> (number of arguments, torch implementation); imported lazily so that parsing
# (done on the host when a task file is loaded) does not need torch.
_FUNCTIONS: dict[str, int] = {
    "abs": 1, "sqrt": 1, "exp": 1, "log": 1, "cos": 1, "sin": 1, "tanh": 1, "sign": 1,
    "norm": 1, "clip": 3, "minimum": 2, "maximum": 2,
}

_BINOPS = (ast.Add, ast.Sub, ast.Mult, ast.Div, ast.Pow, ast.Mod)
_CMPOPS = (ast.Lt, ast.LtE, ast.Gt, ast.GtE, ast.Eq, ast.NotEq)


def parse(text: str, where: str, shapes: Mapping[str, tuple[int, ...]] | None = None) -> ast.expr:
    """Parse ``text`` and reject any syntax outside the language. ``where`` names the field;
    ``shapes`` (per-env shape of each variable), when known, check indexing (``pos[5]``).

    Parts made of numbers alone are computed here, so that one that has no finite value fails
    now rather than at evaluation:

    >>> parse("mean(x) > 9**9**9", "fitness.expression")
    Traceback (most recent call last):
    ...
    rewardsmith.errors.ExpressionError: fitness.expression: 9 ** 9 ** 9 has no finite value (it overflows)
    """
    if not isinstance(text, str) or not text.strip():
        raise ExpressionError(f"{where}: expected a non-empty expression")
    try:
        tree = parse_python(text.strip(), mode="eval").body
    except SyntaxError as exc:
        raise ExpressionError(f"{where}: invalid expression {text!r}: {exc.msg}") from None
    except (ValueError, MemoryError, RecursionError) as exc:  # e.g. a literal with thousands of digits
        raise ExpressionError(f"{where}: invalid expression: {str(exc) or type(exc).__name__}") from None
    for node in ast.walk(tree):
        _check_node(node, where)
        if shapes is not None and isinstance(node, ast.Subscript):
            _check_index(node, shapes, where)
    _check_constants(tree, where)
    return tree


def _check_index(node: ast.Subscript, shapes: Mapping[str, tuple[int, ...]], where: str) -> None:
    name, index = node.value.id, node.slice.value
    shape = shapes.get(name)
    if shape is None:
        return  # an unknown name: reported with the known ones
    if not shape:
        raise ExpressionError(f"{where}: {name} is one number per env; it cannot be indexed ({name}[{index}])")
    if not -shape[-1] <= index < shape[-1]:
        raise ExpressionError(f"{where}: {name}[{index}] is outside {name}, which has {shape[-1]} entries")


def _is_constant(tree: ast.expr) -> bool:
    """Made of numbers (and ``pi``) only, with no aggregation."""
    if isinstance(tree, ast.Name):
        return tree.id in CONSTANTS
    if isinstance(tree, ast.Call) and tree.func.id in AGGREGATIONS:
        return False
    return all(_is_constant(child) for child in _operands(tree))


def _operands(tree: ast.expr) -> list[ast.expr]:
    """The sub-expressions of a node (a call's arguments, not the function's name)."""
    if isinstance(tree, ast.Call):
        return list(tree.args)
    return [child for child in ast.iter_child_nodes(tree) if isinstance(child, ast.expr)]


def _check_constants(tree: ast.expr, where: str) -> None:
    """Compute each largest part made of numbers only; it must have a finite value."""
    if isinstance(tree, ast.Constant) or not _is_constant(tree):
        for child in _operands(tree):
            _check_constants(child, where)
        if isinstance(tree, ast.BinOp) and isinstance(tree.op, (ast.Div, ast.Mod)) and _is_constant(tree.right) \
                and float(compile_tree(tree.right)({})) == 0:
            raise ExpressionError(f"{where}: {ast.unparse(tree)} divides by zero")
        return
    try:
        value = float(compile_tree(tree)({}))
    except OverflowError:
        why = "it overflows"
    except ZeroDivisionError:
        why = "it divides by zero"
    except (ValueError, TypeError) as exc:
        why = str(exc) or type(exc).__name__
    else:
        if math.isfinite(value):
            return
        why = f"it is {value}"
    raise ExpressionError(f"{where}: {ast.unparse(tree)} has no finite value ({why})")


def _check_node(node: ast.AST, where: str) -> None:
    allowed = (
        ast.BoolOp, ast.And, ast.Or, ast.UnaryOp, ast.Not, ast.USub, ast.UAdd, ast.BinOp,
        ast.Compare, ast.IfExp, ast.Call, ast.Name, ast.Load, ast.Constant, ast.Subscript,
        *_BINOPS, *_CMPOPS,
    )
    if not isinstance(node, allowed):
        raise ExpressionError(f"{where}: {type(node).__name__} is not allowed in expressions")
    if isinstance(node, ast.Constant) and not isinstance(node.value, (int, float)):
        raise ExpressionError(f"{where}: only numeric constants are allowed, got {node.value!r}")
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not _finite(node.value):
        digits = str(node.value)
        shown = f"{digits[:12]}... ({len(digits)} digits)" if isinstance(node.value, int) else digits
        raise ExpressionError(f"{where}: the number {shown} is too large (at most about 1e308)")
    if isinstance(node, ast.Call):
        if not isinstance(node.func, ast.Name) or node.keywords:
            raise ExpressionError(f"{where}: only plain calls like abs(x) are allowed")
        name = node.func.id
        arity = 1 if name in AGGREGATIONS else _FUNCTIONS.get(name)
        if arity is None:
            known = ", ".join(sorted([*_FUNCTIONS, *AGGREGATIONS]))
            raise ExpressionError(f"{where}: unknown function {name!r} (known: {known})")
        if len(node.args) != arity:
            raise ExpressionError(f"{where}: {name}() takes {arity} argument(s)")
    if isinstance(node, ast.Subscript):
        index = node.slice
        if not (isinstance(node.value, ast.Name) and isinstance(index, ast.Constant)
                and isinstance(index.value, int)):
            raise ExpressionError(f"{where}: only indexing a variable by a constant, like pos[0], is allowed")


def _finite(value: int | float) -> bool:
    try:
        return math.isfinite(float(value))
    except OverflowError:  # an int beyond the largest float
        return False


def names_in(tree: ast.expr) -> set[str]:
    """Variable names an expression reads (functions and constants excluded)."""
    return {
        n.id for n in ast.walk(tree)
        if isinstance(n, ast.Name) and n.id not in _FUNCTIONS and n.id not in AGGREGATIONS
        and n.id not in CONSTANTS
    }


def _check_names(tree: ast.expr, allowed: set[str], where: str, hint: str = "") -> None:
    for name in sorted(names_in(tree)):
        if name not in allowed:
            raise ExpressionError(
                f"{where}: unknown name {name!r}{hint} (known: {', '.join(sorted(allowed))})")


# --------------------------------------------------------------------------- evaluation
#
# A checked tree is compiled once into nested closures that call torch directly; evaluating it
# per step then costs the torch ops and little else.

_BINARY = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul,
           ast.Div: operator.truediv, ast.Pow: operator.pow, ast.Mod: operator.mod}
_COMPARE = {ast.Lt: operator.lt, ast.LtE: operator.le, ast.Gt: operator.gt, ast.GtE: operator.ge,
            ast.Eq: operator.eq, ast.NotEq: operator.ne}
_MATH: dict[str, Callable[..., float]] = {
    "abs": abs, "sqrt": math.sqrt, "exp": math.exp, "log": math.log, "cos": math.cos, "sin": math.sin,
    "tanh": math.tanh, "sign": lambda v: float((v > 0) - (v < 0)), "norm": abs,
    "clip": lambda v, lo, hi: min(max(v, lo), hi), "minimum": min, "maximum": max}

Compiled = Callable[[Mapping[str, Any]], Any]


def _torch():
    import torch

    return torch


def _as_bool(x: Any):
    if hasattr(x, "dtype"):
        return x if x.dtype == _torch().bool else x != 0
    return bool(x)


def _as_float(x: Any):
    if hasattr(x, "dtype"):
        return x.float() if x.dtype == _torch().bool else x
    return float(x)


def _call(name: str, args: list[Any]):
    torch = _torch()
    if not any(isinstance(a, torch.Tensor) for a in args):  # all constants: plain math
        return _MATH[name](*(float(v) for v in args))
    args = [_as_float(a) for a in args]
    x = args[0]
    if name == "norm":
        return torch.linalg.vector_norm(x, dim=-1) if x.dim() > 1 else x.abs()
    if name == "clip":
        return torch.clamp(x, min=args[1], max=args[2])
    if name in ("minimum", "maximum"):
        a, b = args
        if isinstance(a, torch.Tensor) and isinstance(b, torch.Tensor):
            return torch.minimum(a, b) if name == "minimum" else torch.maximum(a, b)
        t, c = (a, b) if isinstance(a, torch.Tensor) else (b, a)
        return t.clamp(max=c) if name == "minimum" else t.clamp(min=c)
    return getattr(torch, name)(x)


def _logical(op: ast.boolop, a: Any, b: Any):
    if hasattr(a, "dtype") or hasattr(b, "dtype"):
        return (a & b) if isinstance(op, ast.And) else (a | b)
    return (a and b) if isinstance(op, ast.And) else (a or b)


def compile_tree(tree: ast.expr) -> Compiled:
    """Compile a checked tree into a function of ``values`` (a mapping of names to tensors)."""
    if isinstance(tree, ast.Constant):
        value = float(tree.value)
        return lambda values: value
    if isinstance(tree, ast.Name):
        if tree.id in CONSTANTS:
            const = CONSTANTS[tree.id]
            return lambda values: const
        name = tree.id
        return lambda values: values[name]
    if isinstance(tree, ast.Subscript):
        name, index = tree.value.id, tree.slice.value
        return lambda values: values[name][..., index]
    if isinstance(tree, ast.UnaryOp):
        inner = compile_tree(tree.operand)
        if isinstance(tree.op, ast.Not):
            def negate(values):
                b = _as_bool(inner(values))
                return ~b if hasattr(b, "dtype") else (not b)
            return negate
        if isinstance(tree.op, ast.USub):
            return lambda values: -_as_float(inner(values))
        return lambda values: _as_float(inner(values))
    if isinstance(tree, ast.BoolOp):
        parts, op = [compile_tree(v) for v in tree.values], tree.op

        def boolean(values):
            out = _as_bool(parts[0](values))
            for part in parts[1:]:
                out = _logical(op, out, _as_bool(part(values)))
            return out
        return boolean
    if isinstance(tree, ast.BinOp):
        left, right, fn = compile_tree(tree.left), compile_tree(tree.right), _BINARY[type(tree.op)]
        return lambda values: fn(_as_float(left(values)), _as_float(right(values)))
    if isinstance(tree, ast.Compare):
        operands = [compile_tree(tree.left), *(compile_tree(c) for c in tree.comparators)]
        ops = [_COMPARE[type(op)] for op in tree.ops]

        def compare(values):
            left = _as_float(operands[0](values))
            result = None
            for op, operand in zip(ops, operands[1:]):
                right = _as_float(operand(values))
                part = op(left, right)
                result = part if result is None else _logical(ast.And(), result, part)
                left = right
            return result
        return compare
    if isinstance(tree, ast.IfExp):
        test, body, orelse = compile_tree(tree.test), compile_tree(tree.body), compile_tree(tree.orelse)

        def choose(values):
            cond = _as_bool(test(values))
            a, b = _as_float(body(values)), _as_float(orelse(values))
            return _torch().where(cond, a, b) if hasattr(cond, "dtype") else (a if cond else b)
        return choose
    if isinstance(tree, ast.Call):
        name, args = tree.func.id, [compile_tree(a) for a in tree.args]
        return lambda values: _call(name, [a(values) for a in args])
    raise AssertionError(f"unchecked node {type(tree).__name__}")


def evaluate(tree: ast.expr, values: Mapping[str, Any]) -> Any:
    """Evaluate a checked tree once (compile with :func:`compile_tree` to evaluate it often)."""
    return compile_tree(tree)(values)


def to_float_tensor(value: Any, like):
    """Turn a result (bool tensor, float tensor or number) into a float tensor shaped like ``like``."""
    torch = _torch()
    if isinstance(value, torch.Tensor):
        value = value.to(like.dtype)
        return value.expand_as(like) if value.shape != like.shape else value
    return torch.full_like(like, float(value))


class StepExpression:
    """A per-step expression over state variables; returns one float per env."""

    def __init__(self, text: str, names: set[str], where: str = "expression",
                 shapes: Mapping[str, tuple[int, ...]] | None = None):
        self.text = text
        self.tree = parse(text, where, shapes)
        for node in ast.walk(self.tree):
            if isinstance(node, ast.Call) and node.func.id in AGGREGATIONS:
                raise ExpressionError(f"{where}: {node.func.id}() is an episode aggregation; "
                                      "it cannot be used in a per-step expression")
        _check_names(self.tree, set(names), where)
        self.fn = compile_tree(self.tree)

    def __call__(self, values: Mapping[str, Any]):
        like = next(v for v in values.values() if hasattr(v, "shape") and v.dim() == 1)
        return to_float_tensor(self.fn(values), like)


@dataclass(frozen=True)
class Aggregation:
    """One ``kind(step_expression)`` inside a fitness expression."""

    kind: str
    step: ast.expr
    slot: str  # the name the aggregated value takes in the episode-level tree
    fn: Callable[[Mapping[str, Any]], Any]  # the compiled step expression


class FitnessProgram:
    """A parsed fitness expression, split into per-step aggregations and an episode-level tree.

    >>> p = FitnessProgram("sum(abs(a) < 1) / max_episode_steps", step_names={"a"})
    >>> [(agg.kind, ast.unparse(agg.step)) for agg in p.aggregations]
    [('sum', 'abs(a) < 1')]
    """

    def __init__(self, text: str, step_names: set[str], where: str = "fitness.expression",
                 shapes: Mapping[str, tuple[int, ...]] | None = None):
        self.text = text
        self.where = where
        self.tree = parse(text, where, shapes)
        self.aggregations: list[Aggregation] = []
        self.episode_tree = self._split(self.tree, set(step_names))
        names = names_in(self.episode_tree)
        stray = sorted(names & set(step_names))
        if stray:
            raise ExpressionError(
                f"{where}: state variable {stray[0]!r} must be inside an aggregation such as "
                f"mean({stray[0]}) or last({stray[0]})")
        _check_names(self.episode_tree, set(EPISODE_NAMES) | {a.slot for a in self.aggregations}, where)
        self.episode_fn = compile_tree(self.episode_tree)

    def _split(self, tree: ast.expr, step_names: set[str]) -> ast.expr:
        program = self

        class Splitter(ast.NodeTransformer):
            def visit_Call(self, node: ast.Call) -> ast.AST:
                if node.func.id not in AGGREGATIONS:
                    return self.generic_visit(node)
                inner = node.args[0]
                for sub in ast.walk(inner):
                    if isinstance(sub, ast.Call) and sub.func.id in AGGREGATIONS:
                        raise ExpressionError(f"{program.where}: aggregations cannot be nested")
                _check_names(inner, step_names | {"action"}, program.where,
                             hint=" inside " + node.func.id + "()")
                slot = f"_agg{len(program.aggregations)}"
                program.aggregations.append(Aggregation(node.func.id, inner, slot, compile_tree(inner)))
                return ast.copy_location(ast.Name(id=slot, ctx=ast.Load()), node)

        import copy

        return Splitter().visit(copy.deepcopy(tree))

    def episode_value(self, slots: Mapping[str, Any]) -> Any:
        return self.episode_fn(slots)

