"""The offline designer: dense rewards derived from the task's own fitness expression.

It needs no model and knows nothing about particular tasks. From the fitness it takes each
aggregated condition and turns it into a smooth score over the same variables:

- ``abs(x) < c`` (any non-negative left side: a distance, a norm) becomes ``exp(-abs(x) / (t*c))``;
  when ``c`` is small next to the quantity's scale ``s`` (half its declared range; else, until
  a trained candidate shows the distances it starts from, ten times ``c``), a fine term alone
  would be flat where the policy starts, so the score is the sum of a coarse term
  ``1 / (1 + x / (t*s))``, which keeps a slope far from the goal, and the fine one;
- ``x > c`` for a rate (a velocity: its unit is per second or per step) becomes a ramp from rest
  (0) to twice ``c``, so standing still earns nothing and the policy aims well past the
  threshold rather than at it (a speed that varies over a stride or a turn then stays above it);
  other quantities: a ramp from the variable's lowest value up to
  ``c`` (``x < c``: from its highest value), raised to the power ``1/t``, or
  ``exp(-relu(c - x) / (t*s))`` when the variable has no known range; held over the episode
  by a quantity every episode starts at about the same value short of ``c`` (as the stored
  random episodes show), a third of the score up to that start and two thirds for a steep ramp
  from it to well past ``c``;
- ``a == b`` becomes ``exp(-|a - b| / (t*s))``; a plain number (``mean(x_velocity)``) is used as is;
- ``and`` becomes a weighted product (or a weighted mean), ``or`` a maximum, ``not`` ``1 - x``.

Each leaf condition is a named component with a weight ``w`` and temperature ``t``. The first
iteration samples weights, temperatures and the way terms combine around neutral defaults; later
iterations start from the best candidate so far and adjust it from the analyzer's findings (a
constant component gets sharper, a dominating one or one rising without fitness a smaller weight),
then sample around that.
"""

from __future__ import annotations

import ast
import copy
import math
import random
import re
from dataclasses import dataclass, field

from ..envs.description import EnvDescription
from ..expressions import FitnessProgram, names_in
from ..schemas import Candidate, CandidateResult, IterationRecord
from . import DesignRequest

_TORCH_FN = {"abs": "torch.abs", "sqrt": "torch.sqrt", "exp": "torch.exp", "log": "torch.log",
             "cos": "torch.cos", "sin": "torch.sin", "tanh": "torch.tanh", "sign": "torch.sign",
             "minimum": "torch.minimum", "maximum": "torch.maximum"}
COARSE_FACTOR = 10.0   # without a declared range, a distance's coarse scale starts at this many radii
RATE_MARGIN = 1.0      # a speed ramp saturates this far (relative) past its threshold: at twice it
NARROW_START = 0.1     # episodes start at "one value" when its 10-90% spread is under this share of the ramp
_OPS = {ast.Add: "+", ast.Sub: "-", ast.Mult: "*", ast.Div: "/", ast.Pow: "**", ast.Mod: "%"}
_FLIP = {ast.Lt: ast.Gt, ast.LtE: ast.GtE, ast.Gt: ast.Lt, ast.GtE: ast.LtE}


def _n(x: float) -> str:
    """A number as short readable code."""
    if x == int(x) and abs(x) < 1e6:
        return f"{int(x)}.0"
    return f"{x:.4g}"


# ------------------------------------------------------------------------ expression -> code


class _Coder:
    """Translate expression-language trees into torch code over the reward's arguments."""

    def __init__(self, env: EnvDescription):
        self.env = env

    def code(self, node: ast.expr) -> str:
        if isinstance(node, ast.Constant):
            return _n(float(node.value))
        if isinstance(node, ast.Name):
            return "math.pi" if node.id == "pi" else node.id
        if isinstance(node, ast.Subscript):
            return f"{node.value.id}[..., {node.slice.value}]"
        if isinstance(node, ast.UnaryOp):
            inner = self.code(node.operand)
            if isinstance(node.op, ast.Not):
                return f"(~({inner}).bool()).float()"
            return f"(-{inner})" if isinstance(node.op, ast.USub) else inner
        if isinstance(node, ast.BinOp):
            return f"({self.code(node.left)} {_OPS[type(node.op)]} {self.code(node.right)})"
        if isinstance(node, ast.Call):
            name, args = node.func.id, [self.code(a) for a in node.args]
            if name == "norm":
                return f"torch.linalg.vector_norm({args[0]}, dim=-1)"
            if name == "clip":
                return f"torch.clamp({args[0]}, {args[1]}, {args[2]})"
            if name in ("minimum", "maximum") and any(isinstance(a, ast.Constant) for a in node.args):
                tensor_arg, const = (args[0], args[1]) if isinstance(node.args[1], ast.Constant) else (args[1], args[0])
                return f"torch.clamp({tensor_arg}, {'max' if name == 'minimum' else 'min'}={const})"
            return f"{_TORCH_FN[name]}({', '.join(args)})"
        if isinstance(node, (ast.Compare, ast.BoolOp)):
            return f"({ast.unparse(node)})"  # only reached for conditions inside arithmetic
        if isinstance(node, ast.IfExp):
            return f"torch.where({self.code(node.test)}, {self.code(node.body)}, {self.code(node.orelse)})"
        raise ValueError(f"cannot translate {ast.unparse(node)}")

    def is_nonnegative(self, node: ast.expr) -> bool:
        if isinstance(node, ast.Call) and node.func.id in ("abs", "norm", "sqrt", "exp"):
            return True
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Pow) and isinstance(node.right, ast.Constant) \
                and float(node.right.value) % 2 == 0:
            return True
        if isinstance(node, ast.Name):
            var = self.env.variable(node.id)
            return var is not None and var.low is not None and var.low >= 0
        return False

    def bounds(self, node: ast.expr) -> tuple[float | None, float | None]:
        """Known range of a bare variable (or a component of one)."""
        name = node.id if isinstance(node, ast.Name) else (
            node.value.id if isinstance(node, ast.Subscript) else None)
        var = self.env.variable(name) if name else None
        return (var.low, var.high) if var else (None, None)

    def has_range(self, node: ast.expr) -> bool:
        return any((v := self.env.variable(n)) is not None and v.low is not None and v.high is not None
                   and v.high > v.low for n in names_in(node))

    def is_rate(self, node: ast.expr) -> bool:
        """Whether ``node`` is built only from rates (velocities: per second or per step)."""
        found = [self.env.variable(n) for n in names_in(node) if n != "action"]
        return bool(found) and all(v is not None and ("/s" in v.unit or "/step" in v.unit) for v in found)

    def scale(self, node: ast.expr, threshold: float | None = None) -> float:
        """A natural unit for the quantity in ``node``: its declared range, else the threshold."""
        lows, highs = [], []
        for name in names_in(node):
            var = self.env.variable(name)
            if var and var.low is not None and var.high is not None and var.high > var.low:
                lows.append(var.low)
                highs.append(var.high)
        if lows:
            return max((h - lo) / 2 for lo, h in zip(lows, highs))
        if threshold:
            return abs(threshold)
        return 1.0


# ---------------------------------------------------------------------------- reward terms


@dataclass
class Leaf:
    """One component: a smooth score for one condition (or a quantity to maximise)."""

    name: str
    source: str          # the condition as the fitness writes it
    template: str        # torch code with {t} for the temperature-dependent number
    kind: str            # decay, distance, ramp, soft, near, value, indicator
    unit: float = 1.0    # the number that {t} multiplies (or divides, for ramps)
    coarse: float = 0.0  # distance leaves: the coarse scale that {tc} multiplies
    start: float | None = None      # ramps over a declared range: where the ramp starts ({start})
    threshold: float | None = None  # ... and the threshold where it reaches 1 ({span} = the distance between)

    def code(self, temperature: float, coarse_temperature: float = 1.0, start: float | None = None) -> str:
        if self.kind == "ramp":  # a ramp's temperature is the inverse of its power
            code = self.template.replace("{t}", _n(round(1.0 / temperature, 3)))
            if self.start is not None and self.threshold is not None:
                begin = self.start if start is None else start
                code = code.replace("{start}", _n(begin)).replace("{span}", _n(abs(self.threshold - begin)))
            return code
        code = self.template.replace("{t}", _n(self.unit * temperature))
        return code.replace("{tc}", _n(self.coarse * coarse_temperature * temperature))


@dataclass
class Group:
    """The leaves of one aggregation in the fitness, and how much the fitness wants it."""

    leaves: list[Leaf]
    coefficient: float = 1.0   # negative: the fitness wants this small
    reach: bool = False        # any/max/last: reaching the condition is the goal (often ending the episode)


@dataclass
class Params:
    """What the builtin designer varies between candidates."""

    weights: dict[str, float] = field(default_factory=dict)
    temperatures: dict[str, float] = field(default_factory=dict)
    coarse: dict[str, float] = field(default_factory=dict)  # distance leaves: factor on the coarse scale
    starts: dict[str, float] = field(default_factory=dict)  # ramps: where they start, moved from the range's end
    combine: str = "product"          # how leaves of one group combine: product or sum
    action_weight: float = 0.0        # penalty on squared actions (continuous actions)
    motion_weight: float = 0.0        # bonus for moving (added when training made no progress)

    def to_dict(self) -> dict:
        out = {"weights": self.weights, "temperatures": self.temperatures, "combine": self.combine,
               "action_weight": self.action_weight, "motion_weight": self.motion_weight}
        if self.coarse:
            out["coarse"] = self.coarse
        if self.starts:
            out["starts"] = self.starts
        return out

    @classmethod
    def from_dict(cls, data: dict) -> Params:
        return cls(dict(data.get("weights", {})), dict(data.get("temperatures", {})),
                   dict(data.get("coarse", {})), dict(data.get("starts", {})), data.get("combine", "product"),
                   float(data.get("action_weight", 0.0)), float(data.get("motion_weight", 0.0)))


class RewardPlan:
    """The reward structure derived from one fitness expression."""

    def __init__(self, fitness: str, env: EnvDescription, starts: dict[str, tuple[float, float, float]] | None = None):
        self.env = env
        self.fitness = fitness
        self.coder = _Coder(env)
        self.starts = starts or {}
        program = FitnessProgram(fitness, set(env.variable_names))
        coefficients = _linear_coefficients(program.episode_tree)
        self.groups: list[Group] = []
        self.names: set[str] = set()
        for agg in program.aggregations:
            coef = coefficients.get(agg.slot, 1.0)
            self._reach = agg.kind in ("any", "max", "last")
            self.groups.append(Group(self._leaves(agg.step), coef, reach=self._reach))
        length_coef = coefficients.get("episode_length", 0.0)
        if length_coef:
            name = "alive" if length_coef > 0 else "time_penalty"
            self.groups.append(Group([Leaf(name, "episode_length", "torch.ones_like({any})", "value")],
                                     1.0 if length_coef > 0 else -1.0))
        self.continuous = env.action.kind == "continuous"

    # -- conditions -> leaves
    def _leaves(self, node: ast.expr) -> list[Leaf]:
        if isinstance(node, ast.BoolOp) and isinstance(node.op, ast.And):
            return [leaf for value in node.values for leaf in self._leaves(value)]
        if isinstance(node, ast.Compare) and len(node.ops) > 1:  # a < x < b
            parts, left = [], node.left
            for op, right in zip(node.ops, node.comparators):
                parts.append(ast.Compare(left=left, ops=[op], comparators=[right]))
                left = right
            return [leaf for p in parts for leaf in self._leaves(p)]
        return [self._leaf(node)]

    def _unique(self, base: str) -> str:
        base = re.sub(r"\W+", "_", base).strip("_") or "term"
        name, i = base, 2
        while name in self.names:
            name, i = f"{base}_{i}", i + 1
        self.names.add(name)
        return name

    def _subject(self, node: ast.expr) -> str:
        names = sorted(names_in(node) - {"action"}) or ["action"]
        return "_".join(names[:2])

    def _leaf(self, node: ast.expr) -> Leaf:
        source = ast.unparse(node)
        c = self.coder
        if isinstance(node, ast.Compare):
            op, left, right = type(node.ops[0]), _literal(node.left), _literal(node.comparators[0])
            if isinstance(left, ast.Constant) and not isinstance(right, ast.Constant):
                left, right, op = right, left, _FLIP.get(op, op)  # put the constant on the right
            if op in (ast.Eq, ast.NotEq):
                diff = f"torch.abs({c.code(left)} - {c.code(right)})"
                s = c.scale(left)
                tmpl = f"torch.exp(-{diff} / {{t}})" if op is ast.Eq else f"1.0 - torch.exp(-{diff} / {{t}})"
                return Leaf(self._unique(self._subject(node) + "_close"), source, tmpl, "near", s)
            below = op in (ast.Lt, ast.LtE)
            if isinstance(right, ast.Constant):
                threshold = float(right.value)
                if below and c.is_nonnegative(left) and threshold > 0:
                    name = self._unique(self._subject(left) + "_small")
                    coarse = c.scale(left, None) if c.has_range(left) else COARSE_FACTOR * threshold
                    if coarse <= 2 * threshold:  # a wide radius: one term has a slope everywhere
                        return Leaf(name, source, f"torch.exp(-{c.code(left)} / {{t}})", "decay", max(threshold, coarse / 2))
                    # a small radius: a coarse term (slope far from the goal) plus a fine one (precision)
                    tmpl = f"(0.5 / (1.0 + {c.code(left)} / {{tc}}) + 0.5 * torch.exp(-{c.code(left)} / {{t}}))"
                    return Leaf(name, source, tmpl, "distance", threshold, coarse)
                if c.is_rate(left) and (threshold > 0 if not below else threshold < 0):
                    # a speed to exceed in one direction: from rest (0) to well past the threshold
                    target = threshold * (1.0 + RATE_MARGIN)
                    tmpl = f"torch.clamp({c.code(left)} / {_n(target)}, 0.0, 1.0) ** {{t}}"
                    return Leaf(self._unique(self._subject(left) + ("_low" if below else "_high")), source, tmpl,
                                "ramp")
                low, high = c.bounds(left)
                rise = self._rise_from_start(left, threshold, low if not below else high, below)
                if rise is not None:
                    return Leaf(self._unique(self._subject(left) + ("_low" if below else "_high")), source, rise,
                                "ramp", threshold=threshold)
                if not below and low is not None and threshold > low:
                    tmpl = f"torch.clamp(({c.code(left)} - {{start}}) / {{span}}, 0.0, 1.0) ** {{t}}"
                    return Leaf(self._unique(self._subject(left) + "_high"), source, tmpl, "ramp", start=low,
                                threshold=threshold)
                if below and high is not None and threshold < high:
                    tmpl = f"torch.clamp(({{start}} - {c.code(left)}) / {{span}}, 0.0, 1.0) ** {{t}}"
                    return Leaf(self._unique(self._subject(left) + "_low"), source, tmpl, "ramp", start=high,
                                threshold=threshold)
            s = c.scale(left, float(right.value) if isinstance(right, ast.Constant) else None)
            gap = (f"torch.relu({c.code(left)} - {c.code(right)})" if below
                   else f"torch.relu({c.code(right)} - {c.code(left)})")
            suffix = "_low" if below else "_high"
            return Leaf(self._unique(self._subject(left) + suffix), source, f"torch.exp(-{gap} / {{t}})", "soft", s)
        if isinstance(node, (ast.BoolOp, ast.UnaryOp)) and _is_condition(node):
            return Leaf(self._unique(self._subject(node) + "_condition"), source, self._smooth(node), "soft",
                        1.0)
        if _is_condition(node):
            return Leaf(self._unique(self._subject(node) + "_met"), source,
                        f"({c.code(node)}).float()", "indicator")
        return Leaf(self._unique(self._subject(node)), source, c.code(node), "value")

    def _rise_from_start(self, left: ast.expr, threshold: float, end: float | None, below: bool) -> str | None:
        """``x > c`` held over the episode, for a quantity every episode starts at about the same
        value ``s`` short of ``c`` (the hopper's torso stands at 1.25 m; hopping means above 1.4).
        A ramp from the range's end ``e`` to ``c`` pays most of its score for staying at ``s``,
        which PPO settles in. Here a third of the score is the ramp from ``e`` to ``s`` (staying
        up still pays something), two thirds a steep ramp from ``s`` to well past ``c`` (to
        ``c + (c - s)``, as for speeds: a height that varies over a hop stays above ``c``
        longer). Only where the start was observed and is narrow; ``x < c`` mirrored."""
        if self._reach or end is None or not isinstance(left, ast.Name) or left.id not in self.starts:
            return None
        p10, s, p90 = self.starts[left.id]
        sign = -1.0 if below else 1.0
        gap, span = sign * (threshold - s), sign * (threshold - end)
        if not (0 < gap < span and sign * (s - end) > 0) or p90 - p10 > NARROW_START * span:
            return None
        x = self.coder.code(left)
        base = f"torch.clamp(({x} - {_n(end)}) / {_n(s - end)}, 0.0, 1.0)"
        steep = f"torch.clamp(({x} - {_n(s)}) / {_n(2 * (threshold - s))}, 0.0, 1.0)"
        return f"(({base} + 2.0 * {steep}) / 3.0) ** {{t}}"

    def _smooth(self, node: ast.expr) -> str:
        """Code for a compound condition (or/not/nested and), with {t} kept as a placeholder."""
        if isinstance(node, ast.BoolOp):
            parts = [self._smooth(v) for v in node.values]
            if isinstance(node.op, ast.Or):
                out = parts[0]
                for p in parts[1:]:
                    out = f"torch.maximum({out}, {p})"
                return out
            return " * ".join(f"({p})" for p in parts)
        if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not):
            return f"(1.0 - {self._smooth(node.operand)})"
        leaf = self._leaf(node)
        self.names.discard(leaf.name)
        if leaf.kind == "ramp":
            return leaf.code(1.0)
        return leaf.template.replace("{t}", f"({_n(leaf.unit)} * {{t}})").replace("{tc}", _n(leaf.coarse))

    @property
    def leaves(self) -> list[Leaf]:
        return [leaf for g in self.groups for leaf in g.leaves]

    # -- params -> code
    def default_params(self) -> Params:
        return Params(weights={leaf.name: 1.0 for leaf in self.leaves},
                      temperatures={leaf.name: 1.0 for leaf in self.leaves},
                      combine="product", action_weight=0.01 if self.continuous else 0.0)

    @property
    def velocities(self) -> list:
        """State variables that are rates (their unit is per second or per step)."""
        return [v for v in self.env.variables if "/s" in v.unit or "/step" in v.unit]

    def _motion_code(self) -> str:
        parts = []
        for v in self.velocities:
            half_range = (v.high - v.low) / 2 if v.low is not None and v.high is not None else 1.0
            magnitude = f"torch.linalg.vector_norm({v.name}, dim=-1)" if v.shape else f"torch.abs({v.name})"
            parts.append(f"{magnitude} / {_n(half_range)}")
        return f"({' + '.join(parts)}) / {len(parts)}.0"

    def render(self, params: Params) -> str:
        motion = params.motion_weight > 0 and bool(self.velocities)
        used = {n for leaf in self.leaves for n in re.findall(r"\b[a-z_][a-z0-9_]*\b", leaf.template)}
        if motion:
            used |= {v.name for v in self.velocities}
        args = sorted(used & set(self.env.variable_names), key=self.env.variable_names.index)
        uses_action = params.action_weight > 0 or any(re.search(r"\baction\b", leaf.template) for leaf in self.leaves)
        if not args:
            args = [self.env.variable_names[0]]
        if uses_action:
            args.append("action")
        anchor = args[0]
        lines = ["import math", "", "import torch", "", "",
                 f"def compute_reward({', '.join(a + ': torch.Tensor' for a in args)}):",
                 f'    """Dense reward derived from the task fitness: {self.fitness}"""']
        component_names: list[str] = []
        group_terms: list[str] = []
        for group in self.groups:
            parts = []
            for leaf in group.leaves:
                t = params.temperatures.get(leaf.name, 1.0)
                code = leaf.code(t, params.coarse.get(leaf.name, 1.0), params.starts.get(leaf.name)).replace(
                    "{any}", anchor)
                lines.append(f"    {leaf.name} = {code}  # {leaf.source}")
                component_names.append(leaf.name)
                parts.append(leaf)
            group_terms.append(self._combine(group, parts, params))
        total = " + ".join(group_terms).replace("+ -", "- ")
        if motion:
            lines.append(f"    motion = {self._motion_code()}  # moving explores (no progress was made without it)")
            component_names.append("motion")
            total += f" + {_n(params.motion_weight)} * motion"
        if params.action_weight > 0:
            lines.append("    action_cost = torch.square(action).reshape(action.shape[0], -1).sum(-1)")
            component_names.append("action_cost")
            total += f" - {_n(params.action_weight)} * action_cost"
        lines.append(f"    total = {total}")
        named = ", ".join(f'"{n}": {n}' for n in component_names)
        lines.append(f"    return total, {{{named}}}")
        return "\n".join(lines) + "\n"

    def _combine(self, group: Group, leaves: list[Leaf], params: Params) -> str:
        w = {leaf.name: params.weights.get(leaf.name, 1.0) for leaf in leaves}
        values = [leaf for leaf in leaves if leaf.kind == "value"]
        scores = [leaf for leaf in leaves if leaf.kind != "value"]
        terms = [f"{_n(w[leaf.name])} * {leaf.name}" for leaf in values]
        if scores:
            if params.combine == "product" and len(scores) > 1:
                score = " * ".join(f"{leaf.name} ** {_n(w[leaf.name])}" for leaf in scores)
            elif len(scores) > 1:
                norm = sum(w[leaf.name] for leaf in scores)
                score = "(" + " + ".join(f"{_n(w[leaf.name] / norm)} * {leaf.name}" for leaf in scores) + ")"
            else:
                score = f"{_n(w[scores[0].name])} * {scores[0].name}"
            # When reaching the condition is the goal (and often ends the episode), a positive
            # reward per step would teach the policy to avoid the goal; a cost of (score - 1)
            # per step teaches it to get there soon.
            terms.append(f"({score} - {_n(w[scores[0].name]) if len(scores) == 1 else '1.0'})" if group.reach else score)
        body = " + ".join(terms)
        coef = group.coefficient
        if coef == 1.0:
            return body if len(terms) == 1 else f"({body})"
        return f"{_n(coef)} * ({body})"


def _literal(node: ast.expr) -> ast.expr:
    """``-2`` (a negated number) as the constant it is; anything else unchanged."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)) \
            and isinstance(node.operand, ast.Constant) and isinstance(node.operand.value, (int, float)):
        value = node.operand.value
        return ast.Constant(value=-value if isinstance(node.op, ast.USub) else value)
    return node


def _is_condition(node: ast.expr) -> bool:
    return isinstance(node, (ast.Compare, ast.BoolOp)) or (
        isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.Not))


def _linear_coefficients(tree: ast.expr) -> dict[str, float]:
    """How the episode-level fitness grows with each aggregation slot and ``episode_length``.

    Sums, differences, negation and scaling by constants or episode constants are followed;
    anything else counts as increasing (the common case: the fitness grows with its parts).
    """
    out: dict[str, float] = {}

    def visit(node: ast.expr, scale: float) -> None:
        if isinstance(node, ast.Name):
            if node.id.startswith("_agg") or node.id == "episode_length":
                out[node.id] = out.get(node.id, 0.0) + scale
        elif isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
            visit(node.operand, -scale)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Add, ast.Sub)):
            visit(node.left, scale)
            visit(node.right, -scale if isinstance(node.op, ast.Sub) else scale)
        elif isinstance(node, ast.BinOp) and isinstance(node.op, (ast.Mult, ast.Div)):
            const = _constant(node.right) if isinstance(node.op, ast.Div) else (
                _constant(node.left) if _constant(node.left) is not None else _constant(node.right))
            if isinstance(node.op, ast.Div):
                visit(node.left, scale if const is None else scale * (1.0 if const == "episode" else 1.0 / const))
                if const is None:
                    visit(node.right, -scale)
            elif const is not None:
                factor = 1.0 if const == "episode" else const
                visit(node.right if _constant(node.left) is not None else node.left, scale * factor)
            else:
                visit(node.left, scale)
                visit(node.right, scale)
        else:
            for child in ast.iter_child_nodes(node):
                if isinstance(child, ast.expr):
                    visit(child, scale)

    visit(tree, 1.0)
    top = max((abs(v) for v in out.values()), default=1.0) or 1.0
    return {k: v / top for k, v in out.items()}


def _constant(node: ast.expr):
    if isinstance(node, ast.Constant):
        return float(node.value) or None
    if isinstance(node, ast.Name) and node.id in ("max_episode_steps", "pi"):
        return "episode" if node.id == "max_episode_steps" else math.pi
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _constant(node.operand)
        return -inner if isinstance(inner, float) else inner
    return None


# --------------------------------------------------------------------------------- search


def _jitter(params: Params, rng: random.Random, strength: float, action_levels: list[float]) -> Params:
    out = copy.deepcopy(params)
    for name in out.weights:
        out.weights[name] = round(out.weights[name] * math.exp(rng.gauss(0, strength)), 3)
    for name in out.temperatures:
        out.temperatures[name] = round(min(8.0, max(0.05, out.temperatures[name] * math.exp(rng.gauss(0, strength)))), 3)
    if rng.random() < 0.3:
        out.combine = "sum" if out.combine == "product" else "product"
    if action_levels:
        out.action_weight = rng.choice(action_levels)
    return out


def _adjust(params: Params, result: CandidateResult) -> tuple[Params, list[str]]:
    """Apply the analyzer's findings to the parent's parameters."""
    out = copy.deepcopy(params)
    notes: list[str] = []
    findings = result.analysis.findings if result.analysis else []
    last = result.train.checkpoints[-1].components if result.train and result.train.checkpoints else {}
    for f in findings:
        name = f.component
        if f.kind == "constant" and name in out.temperatures:
            # a score stuck near 1 is too wide (always satisfied): sharpen it; stuck near 0 it
            # is too narrow (never close): widen it
            high = name in last and last[name].mean > 0.5
            out.temperatures[name] = round(out.temperatures[name] * (0.5 if high else 2.0), 3)
            notes.append(f"{'sharpened' if high else 'widened'} {name} (constant)")
        elif f.kind in ("dominating", "rising_without_fitness") and name in out.weights:
            out.weights[name] = round(out.weights[name] * 0.5, 3)
            notes.append(f"halved the weight of {name} ({f.kind.replace('_', ' ')})")
        elif f.kind == "rising_without_fitness" and name == "action_cost":
            out.action_weight *= 0.5
        elif f.kind == "rising_without_fitness" and name == "motion":
            out.motion_weight *= 0.5
        elif f.kind == "no_progress":
            out.combine = "sum" if out.combine == "product" else "product"
            out.action_weight *= 0.1
            out.motion_weight = max(out.motion_weight, 0.3)
            notes.append(f"switched to a {out.combine} of terms and added a motion bonus (no progress)")
    return out, notes


def _observe_distances(plan: RewardPlan, params: Params, result: CandidateResult) -> list[str]:
    """Set each distance's coarse scale to the distance the parent's policy started from.

    While the distance ``d`` is well outside the fine radius, the leaf's value is about
    ``0.5 / (1 + d / s)``, so its mean over the first training checkpoint tells the typical
    starting distance; a coarse scale equal to it gives the coarse term its steepest slope there.
    """
    notes: list[str] = []
    checkpoints = result.train.checkpoints if result.train else []
    if not checkpoints:
        return notes
    first = checkpoints[0].components
    for leaf in plan.leaves:
        if leaf.kind != "distance" or leaf.name not in first:
            continue
        value = first[leaf.name].mean
        t = params.temperatures.get(leaf.name, 1.0)
        scale = leaf.coarse * params.coarse.get(leaf.name, 1.0) * t
        if not 1e-6 < value < 0.4:  # near the goal from the start (or nothing to read): keep the scale
            continue
        start = scale * (0.5 / value - 1.0)
        params.coarse[leaf.name] = round(min(100.0, max(0.01, start / (leaf.coarse * t))), 3)
        notes.append(f"set the coarse scale of {leaf.name} to the observed starting distance ({start:.3g})")
    return notes


def _observe_ramps(plan: RewardPlan, params: Params, result: CandidateResult) -> list[str]:
    """After training that made no progress, start each range ramp where the policy started.

    A ramp from the end of a variable's range (``torso_z > 1.4`` from the lowest healthy height
    0.7) pays most of its score for the starting state (standing at 1.25), which can be the
    optimum PPO settles in. Read back from the ramp's mean over the first checkpoint, the
    starting value becomes the ramp's start: only going beyond it pays.
    """
    notes: list[str] = []
    if not (result.analysis and any(f.kind == "no_progress" for f in result.analysis.findings)):
        return notes
    first = result.train.checkpoints[0].components if result.train and result.train.checkpoints else {}
    for leaf in plan.leaves:
        if leaf.kind != "ramp" or leaf.start is None or leaf.threshold is None or leaf.name not in first:
            continue
        value = first[leaf.name].mean
        if not 0.05 < value < 0.95:
            continue
        begin = params.starts.get(leaf.name, leaf.start)
        power = 1.0 / params.temperatures.get(leaf.name, 1.0)
        at = begin + value ** (1.0 / power) * (leaf.threshold - begin)  # invert clamp(...) ** power
        params.starts[leaf.name] = round(at, 4)
        notes.append(f"started {leaf.name} at the observed starting value ({at:.3g}): the start earned it "
                     f"{value:.2f} and training made no progress")
    return notes


def _parent(history: list[IterationRecord]) -> CandidateResult | None:
    """The best candidate so far: by fitness under metric feedback, else the last one people chose."""
    if not history:
        return None
    last = history[-1]
    if last.feedback is not None and last.feedback.kind != "metric" and last.feedback.best is not None:
        return next((c for c in last.candidates if c.index == last.feedback.best), None)
    scored = [c for rec in history for c in rec.candidates if c.status == "ok" and c.fitness is not None]
    return max(scored, key=lambda c: c.fitness or 0.0) if scored else None


class BuiltinDesigner:
    """Offline designer; the same code for every task (see the module docstring)."""

    name = "builtin"

    def propose(self, request: DesignRequest) -> list[Candidate]:
        plan = RewardPlan(request.task.fitness.expression, request.env, request.starts)
        rng = random.Random(f"{request.task.train.seed}-{request.iteration}")
        action_levels = [0.0, 0.001, 0.01, 0.1] if plan.continuous else []
        parent = _parent(request.history)
        if parent is None or "params" not in parent.origin:
            base, notes, strength = plan.default_params(), ["defaults derived from the fitness"], 0.7
        else:
            base, notes = _adjust(Params.from_dict(parent.origin["params"]), parent)
            notes += _observe_distances(plan, base, parent) + _observe_ramps(plan, base, parent)
            notes.insert(0, f"refined from iteration {parent.iteration} candidate {parent.index}")
            strength = 0.4
        # never propose a reward that was already tried: training it again would teach nothing
        seen = {c.code for rec in request.history for c in rec.candidates}
        proposals: list[tuple[Params, list[str], str]] = []
        params, why = base, notes
        for _ in range(20 * request.samples):
            code = plan.render(params)
            if code not in seen:
                seen.add(code)
                proposals.append((params, why, code))
                if len(proposals) == request.samples:
                    break
            params = _jitter(base, rng, strength, action_levels)
            why = ["random variation"] if proposals else [*notes, "varied: the refinement alone was tried already"]
        return [Candidate(iteration=request.iteration, index=i, code=code,
                          origin={"designer": self.name, "params": p.to_dict(), "notes": n})
                for i, (p, n, code) in enumerate(proposals)]

