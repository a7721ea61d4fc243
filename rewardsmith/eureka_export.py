"""Export a found reward in Eureka's form: a TorchScript ``compute_reward`` for an IsaacGymEnvs task.

Eureka pastes its reward at the end of the task's file, under ``from typing import Tuple, Dict``,
``import math``, ``import torch`` and ``from torch import Tensor``, as a ``@torch.jit.script``
function whose arguments are the task's attributes, and calls it from the task's own
``compute_reward``::

    self.rew_buf[:], self.rew_dict = compute_reward(self.dof_pos, self.dof_vel)

:func:`eureka_text` writes the reward that way: the same code (comments kept), with
``compute_reward`` scripted, its arguments annotated as tensors and its return as
``Tuple[torch.Tensor, Dict[str, torch.Tensor]]``; helper parameters that receive plain numbers
annotated (TorchScript takes an unannotated parameter for a tensor); module constants (numbers,
``math``, tuples and dicts of those) copied to the top of each function that reads them
(TorchScript reads no Python globals); and the module's own helpers prefixed with ``_reward_``, so
that pasting them into a task file cannot replace a name the file uses (``normalize``,
``scale``...). Nothing here runs the code: whether TorchScript takes it is checked in a sandbox
(:func:`rewardsmith.api.export`).

>>> print(eureka_text('''import torch
... SCALE = 0.5
... def near(x, width):
...     return torch.exp(-(x / width) ** 2)  # a bell
... def compute_reward(dof_pos, action):
...     up = near(dof_pos[:, 1], SCALE)
...     return up, {"up": up}
... '''))
from typing import Tuple, Dict
import math
import torch
from torch import Tensor
<BLANKLINE>
def _reward_near(x, width: float):
    return torch.exp(-(x / width) ** 2)  # a bell
@torch.jit.script
def compute_reward(dof_pos: torch.Tensor, action: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    SCALE = 0.5
    up = _reward_near(dof_pos[:, 1], SCALE)
    return up, {"up": up}
<BLANKLINE>
"""

from __future__ import annotations

import ast
import io
import re
import textwrap
import tokenize
from collections.abc import Iterable
from dataclasses import dataclass

from .contract import ACTION, ENTRY_POINT, SCRIPT, dotted, module_aliases, prelude_imports, read_form
from .errors import RewardsmithError
from .standalone import BestReward

PREFIX = "_reward_"
RETURNS = "Tuple[torch.Tensor, Dict[str, torch.Tensor]]"
EUREKA_IMPORTS = "from typing import Tuple, Dict\nimport math\nimport torch\nfrom torch import Tensor\n"
EUREKA_BINDS = {"Tuple": "typing.Tuple", "Dict": "typing.Dict", "math": "math", "torch": "torch", "Tensor": "torch.Tensor"}
SCOPES = (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)
COMPREHENSIONS = (ast.ListComp, ast.SetComp, ast.DictComp, ast.GeneratorExp)


@dataclass(frozen=True)
class _Edit:
    start: int  # offsets into the text
    end: int
    text: str


def eureka_text(code: str, header: str = "") -> str:
    """``code`` (a reward that passed the static check) in Eureka's form, under ``header``."""
    try:
        form = read_form(code)
    except SyntaxError as exc:
        raise RewardsmithError(f"the reward does not parse: line {exc.lineno}: {exc.msg}") from None
    tree = form.tree
    entry = next((n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == ENTRY_POINT), None)
    if entry is None:
        raise RewardsmithError(f"the reward defines no top-level function {ENTRY_POINT}")
    offsets = _Offsets(code)
    aliases = module_aliases(tree)
    spans: list[_Edit] = []   # whole regions replaced: statements moved or dropped, the header
    edits: list[_Edit] = []   # names and annotations, outside those regions
    imports: list[str] = []

    def drop(node: ast.stmt) -> None:
        spans.append(_Edit(offsets.line_start(node.lineno), offsets.line_start((node.end_lineno or node.lineno) + 1), ""))

    constants = _inlinable(tree, aliases)
    for node in tree.body:
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            if not _already_imported(node):
                imports.append(ast.get_source_segment(code, node) or "")
            drop(node)
        elif (isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name)
              and node.targets[0].id == ENTRY_POINT and isinstance(node.value, ast.Call)
              and dotted(node.value.func, aliases) == SCRIPT):
            drop(node)  # `compute_reward = torch.jit.script(compute_reward)`: the decorator says it
        elif _bindings(node) and set(_bindings(node)) <= set(constants):
            drop(node)  # TorchScript reads no Python globals: the value goes where the name was
    spans.append(_header_edit(code, offsets, entry, aliases))

    # TorchScript reads no Python globals: each function that reads a constant gets its own copy,
    # at its top; a constant read at module level (a default value, say) is replaced by its value
    texts = _constant_texts(code, constants)
    references = _global_references(tree, set(constants))
    for fn in tree.body:
        if isinstance(fn, ast.FunctionDef):
            inside = {id(n) for statement in fn.body for n in ast.walk(statement)}
            used = {n.id for n in references if id(n) in inside}
            local = _local_copies(code, offsets, fn, tree, constants, used)
            if local is not None:
                edits.append(local)
                references = [n for n in references if id(n) not in inside]
    for ref in references:
        edits.append(_Edit(offsets.at(ref.lineno, ref.col_offset), offsets.at(ref.end_lineno, ref.end_col_offset),  # type: ignore[arg-type]
                           texts[ref.id]))
    renamed = _module_names(tree) - set(constants)
    for ref in _global_references(tree, renamed):
        edits.append(_Edit(offsets.at(ref.lineno, ref.col_offset), offsets.at(ref.end_lineno, ref.end_col_offset),  # type: ignore[arg-type]
                           PREFIX + ref.id))
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.ClassDef)) and node.name in renamed:
            start, end = _name_span(code, offsets, node)
            edits.append(_Edit(start, end, PREFIX + node.name))
    for arg, annotation in _helper_annotations(tree, entry, aliases).items():
        end = offsets.at(arg.end_lineno, arg.end_col_offset)  # type: ignore[arg-type]
        edits.append(_Edit(end, end, f": {annotation}"))
    edits = [e for e in edits if all(e.end <= s.start or e.start >= s.end for s in spans)]

    body = _apply(code, spans + edits)
    body = re.sub(r"\n{4,}", "\n\n\n", body).strip("\n") + "\n"
    extra = prelude_imports(set(form.prelude_used) - set(EUREKA_BINDS))  # List, Optional used without an import
    own = "".join(line + "\n" for line in [*filter(None, [extra]), *imports])
    return f"{header}{EUREKA_IMPORTS}{own}\n{body}"


def _bindings(node: ast.stmt) -> dict[str, ast.expr]:
    """``{name: value}`` for a module-level ``NAME = value``, ``NAME: type = value`` or
    ``A, B = a, b``; empty for any other statement."""
    if isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
        return {node.target.id: node.value}
    if not isinstance(node, ast.Assign) or len(node.targets) != 1:
        return {}
    target, value = node.targets[0], node.value
    if isinstance(target, ast.Name):
        return {target.id: value}
    if (isinstance(target, ast.Tuple) and isinstance(value, ast.Tuple) and len(target.elts) == len(value.elts)
            and all(isinstance(t, ast.Name) for t in target.elts)):
        return {t.id: v for t, v in zip(target.elts, value.elts)}  # type: ignore[attr-defined]
    return {}


def _inlinable(tree: ast.Module, aliases: dict[str, str]) -> dict[str, ast.expr]:
    """Module constants made only of numbers, strings, ``math`` and earlier such constants, bound
    once: ``{name: value}``."""
    stores: dict[str, int] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            stores[node.id] = stores.get(node.id, 0) + 1
        elif isinstance(node, ast.arg):
            stores[node.arg] = stores.get(node.arg, 0) + 2
    found: dict[str, ast.expr] = {}
    for node in tree.body:
        bound = _bindings(node)
        if bound and all(name != ENTRY_POINT and stores.get(name) == 1 and _pure(value, found, aliases)
                         for name, value in bound.items()):
            found.update(bound)
    return found


def _pure(node: ast.expr, known: dict[str, ast.expr], aliases: dict[str, str]) -> bool:
    for child in ast.walk(node):
        if isinstance(child, ast.Name):
            if child.id not in known and aliases.get(child.id) != "math":
                return False
        elif isinstance(child, ast.Call):
            if not (dotted(child.func, aliases) or "").startswith("math."):
                return False
        elif not isinstance(child, (ast.Constant, ast.BinOp, ast.UnaryOp, ast.Tuple, ast.List, ast.Dict, ast.Attribute,
                                    ast.Load, ast.operator, ast.unaryop)):
            return False
    return True


def _local_copies(code: str, offsets: _Offsets, fn: ast.FunctionDef, tree: ast.Module, constants: dict[str, ast.expr],
                  used: set[str]) -> _Edit | None:
    """The statements that define the constants ``fn`` reads (and those they read), inserted at the
    top of its body; ``None`` where there is nowhere to put them (a one-line ``def``)."""
    if not used:
        return None
    wanted = set(used)
    for name in reversed(list(constants)):  # what each wanted constant reads is wanted too
        if name in wanted:
            wanted |= {n.id for n in ast.walk(constants[name]) if isinstance(n, ast.Name) and n.id in constants}
    body = fn.body[1:] if _is_docstring(fn.body[0]) else fn.body
    if not body or body[0].lineno == fn.lineno:
        return None
    anchor = body[0]
    indent = offsets.at(anchor.lineno, anchor.col_offset) - offsets.line_start(anchor.lineno)
    lines = []
    for statement in tree.body:
        if set(_bindings(statement)) & wanted:
            text = ast.get_source_segment(code, statement) or ""
            rest = code[offsets.at(statement.end_lineno, statement.end_col_offset):  # type: ignore[arg-type]
                        offsets.line_start((statement.end_lineno or statement.lineno) + 1)].strip()
            lines.append(" " * indent + text + (f"  {rest}" if rest.startswith("#") else "") + "\n")
    at = offsets.line_start(anchor.lineno)
    return _Edit(at, at, "".join(lines))


def _is_docstring(node: ast.stmt) -> bool:
    return isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)


def _constant_texts(code: str, constants: dict[str, ast.expr]) -> dict[str, str]:
    """What replaces each constant's name: its value's source, other constants in it replaced."""
    texts: dict[str, str] = {}
    for name, value in constants.items():  # in order: a value only uses constants defined before it
        segment = ast.get_source_segment(code, value, padded=False) or ""
        local = _Offsets(segment)
        base_line, base_col = value.lineno, value.col_offset
        inner = []
        for node in ast.walk(value):
            if isinstance(node, ast.Name) and node.id in texts:
                line = node.lineno - base_line + 1
                col = node.col_offset - (base_col if line == 1 else 0)
                end_col = node.end_col_offset - (base_col if node.end_lineno == base_line else 0)  # type: ignore[operator]
                inner.append(_Edit(local.at(line, col), local.at(node.end_lineno - base_line + 1, end_col),  # type: ignore[operator]
                                   texts[node.id]))
        text = _apply(segment, inner)
        texts[name] = text if isinstance(value, ast.Constant) else f"({text})"
    return texts


def eureka_module(best: BestReward) -> str:
    """The best reward of a run in Eureka's form, with a header saying where it goes."""
    task, description = best.task, best.description
    entry = next(n for n in read_form(best.code).tree.body if isinstance(n, ast.FunctionDef) and n.name == ENTRY_POINT)
    args = [a.arg for a in (*entry.args.posonlyargs, *entry.args.args, *entry.args.kwonlyargs)]
    attributes = task.env.backend == "isaacgym"
    passed = ", ".join(("self.actions" if a == ACTION else f"self.{a}") if attributes else a for a in args)
    score = "" if best.fitness is None else f" (fitness {best.fitness:.3f}, success threshold " \
                                            f"{task.fitness.success_threshold:g})"
    lines = [f"Reward for {task.name!r}, found by rewardsmith{score}.", "",
             *textwrap.wrap("Task: " + " ".join(task.description.split()), 96, subsequent_indent="  "),
             f"Environment: {description.id}",
             f"Fitness: {task.fitness.expression}", f"From: {best.origin}", ""]
    if attributes:
        lines += ["Eureka's form: put this at the end of the IsaacGymEnvs task's file and call it from the task's",
                  "compute_reward, as Eureka does:"]
    else:
        lines += [f"Eureka's form, over the names rewardsmith gives {description.id}'s state: put it at the end of",
                  "an IsaacGymEnvs task's file and call it with the task's tensors for these arguments:"]
    lines += ["", f"    self.rew_buf[:], self.rew_dict = compute_reward({passed})",
              "    self.extras['gpt_reward'] = self.rew_buf.mean()",
              "    for rew_state in self.rew_dict: self.extras[rew_state] = self.rew_dict[rew_state].mean()", "",
              "Arguments (tensors, first dimension = number of envs):"]
    for name in args:
        if name == ACTION:
            where = " (self.actions, as pre_physics_step stored them)" if attributes else ""
            lines.append(f"  action: {description.action.description}{where}")
        else:
            v = description.variable(name)
            assert v is not None, "the static check bound every argument"
            lines.append(f"  {name} (n{''.join(f', {d}' for d in v.shape)}) [{v.unit}]: {v.description}")
    lines.append("It returns (total reward of shape (n,), {component name: tensor of shape (n,)}).")
    text = eureka_text(best.code)
    if PREFIX in text:
        lines.append(f"The reward's own helpers are prefixed with {PREFIX} so that they cannot replace the task file's names.")
    return "".join(f"# {line}".rstrip() + "\n" for line in lines) + "\n" + text


def check_export(best: BestReward, text: str, sandbox: str = "auto", device: str = "auto") -> str:
    """Run the export and the trained reward in a sandbox on the same states; raise unless the
    export compiles with TorchScript and gives the same values. Returns what was checked."""
    import math
    import tempfile
    from concurrent.futures import ThreadPoolExecutor
    from pathlib import Path

    from .critic.static import static_check
    from .runners.jobs import check_reward
    from .runners.sandboxes import Limits, make_sandbox

    verdict = static_check(text, best.description.reward_arguments)
    if not verdict.ok:
        raise RewardsmithError(f"the Eureka export of {best.origin} does not pass the static check: {verdict.reason}")
    box = make_sandbox(sandbox)
    limits = Limits(timeout_s=best.task.sandbox.timeout_s, memory_mb=best.task.sandbox.memory_mb)
    with tempfile.TemporaryDirectory(prefix="rewardsmith-export-") as scratch, ThreadPoolExecutor(2) as pool:
        trained = pool.submit(check_reward, best.task, best.code, Path(scratch) / "trained", box, limits, device)
        exported = pool.submit(check_reward, best.task, text, Path(scratch) / "export", box, limits, device)
        before, after = trained.result(), exported.result()
    if not after.ok:
        raise RewardsmithError(f"the Eureka export of {best.origin} fails its dry run: {after.reason}")
    if after.runs_as != "torchscript":
        raise RewardsmithError(f"the best reward ({best.origin}) does not run as TorchScript: {after.torchscript_error}; "
                               "`--format module` exports it as plain Python")
    if not before.ok:
        raise RewardsmithError(f"the trained reward {best.origin} fails its dry run now: {before.reason}")
    same = len(before.signature) == len(after.signature) and all(
        math.isclose(a, b, rel_tol=1e-4, abs_tol=1e-5) for a, b in zip(before.signature, after.signature))
    if not same or before.components != after.components:
        raise RewardsmithError(f"the Eureka export of {best.origin} computes other values than the trained reward "
                               "(a bug in rewardsmith's export; --format module exports the code as it was trained)")
    return (f"checked in the {box.name} sandbox: TorchScript compiles it, and on {len(after.signature)} states it gives "
            f"the trained reward's values and components ({', '.join(after.components)})")


def _already_imported(node: ast.Import | ast.ImportFrom) -> bool:
    """A ``__future__`` import (a task file cannot take one at its end), or one that binds only
    what Eureka's import lines bind."""
    if isinstance(node, ast.ImportFrom):
        if node.module == "__future__":
            return True
        binds = {a.asname or a.name: f"{node.module}.{a.name}" for a in node.names}
    else:
        binds = {a.asname or a.name.split(".")[0]: a.name if a.asname else a.name.split(".")[0] for a in node.names}
    return all(EUREKA_BINDS.get(name) == path for name, path in binds.items())


# -- positions ------------------------------------------------------------------------------------


class _Offsets:
    """Text offsets from ast positions (1-based lines; columns in UTF-8 bytes, as ast gives them)."""

    def __init__(self, text: str):
        self.lines = text.splitlines(keepends=True)
        self.starts = [0]
        for line in self.lines:
            self.starts.append(self.starts[-1] + len(line))

    def line_start(self, lineno: int) -> int:
        return self.starts[min(lineno - 1, len(self.lines))]

    def at(self, lineno: int, byte_col: int) -> int:
        line = self.lines[lineno - 1]
        return self.starts[lineno - 1] + len(line.encode()[:byte_col].decode(errors="ignore"))


def _apply(text: str, edits: Iterable[_Edit]) -> str:
    for edit in sorted(edits, key=lambda e: (e.start, e.end), reverse=True):
        text = text[:edit.start] + edit.text + text[edit.end:]
    return text


def _name_span(code: str, offsets: _Offsets, node: ast.FunctionDef | ast.ClassDef) -> tuple[int, int]:
    """Where the name after ``def``/``class`` is."""
    start = offsets.at(node.lineno, node.col_offset)
    match = re.compile(r"(def|class)\s+(\w+)").match(code, start)
    assert match and match.group(2) == node.name, "a def's name follows its keyword"
    return match.start(2), match.end(2)


def _header_edit(code: str, offsets: _Offsets, entry: ast.FunctionDef, aliases: dict[str, str]) -> _Edit:
    """``compute_reward``'s decorators and signature, rewritten for TorchScript."""
    kept = [ast.get_source_segment(code, d) for d in entry.decorator_list if dotted(d, aliases) != SCRIPT]
    def_at = offsets.at(entry.lineno, entry.col_offset)
    start = def_at
    if entry.decorator_list:
        first = entry.decorator_list[0]
        start = code.rindex("@", 0, offsets.at(first.lineno, first.col_offset))
    end = _header_end(code, def_at)
    args = entry.args
    params = ", ".join(f"{a.arg}: torch.Tensor" for a in (*args.posonlyargs, *args.args, *args.kwonlyargs))
    decorators = "".join(f"@{d}\n" for d in kept)
    return _Edit(start, end, f"@torch.jit.script\n{decorators}def {ENTRY_POINT}({params}) -> {RETURNS}:")


def _header_end(code: str, def_at: int) -> int:
    """The offset just after the colon that ends the ``def`` header starting at ``def_at``."""
    depth = 0
    rest = code[def_at:]
    offsets = _Offsets(rest)
    for token in tokenize.generate_tokens(io.StringIO(rest).readline):
        if token.type == tokenize.OP:
            if token.string in "([{":
                depth += 1
            elif token.string in ")]}":
                depth -= 1
            elif token.string == ":" and depth == 0:
                row, col = token.end
                return def_at + offsets.line_start(row) + col
    raise AssertionError("a parsed def has a header colon")


# -- scopes ---------------------------------------------------------------------------------------


def _module_names(tree: ast.Module) -> set[str]:
    """Names the module itself defines (helpers, constants), other than the entry point and
    imports; empty when ``global``/``nonlocal`` makes scopes too murky to rename safely."""
    if any(isinstance(n, (ast.Global, ast.Nonlocal)) for n in ast.walk(tree)):
        return set()
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, (ast.Assign, ast.AnnAssign, ast.AugAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names |= {n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name)}
    return names - {ENTRY_POINT}


def _locals(scope: ast.AST) -> set[str]:
    """Names a function or lambda binds in its own body (parameters included)."""
    args = scope.args  # type: ignore[attr-defined]
    names = {a.arg for a in (*args.posonlyargs, *args.args, *args.kwonlyargs, args.vararg, args.kwarg) if a}
    body = scope.body if isinstance(scope.body, list) else [scope.body]  # type: ignore[attr-defined]
    stack: list[ast.AST] = list(body)
    while stack:
        node = stack.pop()
        if isinstance(node, ast.Name) and not isinstance(node.ctx, ast.Load):
            names.add(node.id)
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
            continue
        if isinstance(node, ast.Lambda):
            continue
        stack.extend(ast.iter_child_nodes(node))
    return names


def _global_references(tree: ast.Module, names: set[str]) -> list[ast.Name]:
    """The ``Name`` nodes that refer to the module-level bindings of ``names``."""
    found: list[ast.Name] = []

    def visit(node: ast.AST, shadowed: frozenset[str]) -> None:
        if isinstance(node, SCOPES):
            args = node.args
            outer: list[ast.AST] = [*args.defaults, *(d for d in args.kw_defaults if d is not None)]
            if not isinstance(node, ast.Lambda):
                outer += [*node.decorator_list, *(a.annotation for a in (*args.posonlyargs, *args.args,
                                                                         *args.kwonlyargs) if a.annotation)]
                outer += [node.returns] if node.returns else []
            for child in outer:
                visit(child, shadowed)
            inner = shadowed | _locals(node)
            for child in node.body if isinstance(node.body, list) else [node.body]:
                visit(child, inner)
            return
        if isinstance(node, COMPREHENSIONS):
            targets = {n.id for g in node.generators for n in ast.walk(g.target) if isinstance(n, ast.Name)}
            for child in ast.iter_child_nodes(node):
                visit(child, shadowed | targets)
            return
        if isinstance(node, ast.Name) and node.id in names and node.id not in shadowed:
            found.append(node)
        for child in ast.iter_child_nodes(node):
            visit(child, shadowed)

    for statement in tree.body:
        visit(statement, frozenset())
    return found


# -- annotations TorchScript needs ----------------------------------------------------------------


INT_FUNCTIONS = {"floor", "ceil", "trunc", "factorial", "gcd", "lcm", "isqrt", "comb", "perm"}


def _kind(node: ast.expr | None, constants: dict[str, str], aliases: dict[str, str]) -> str | None:
    """``float``, ``int`` or ``bool`` for a plain number: a literal, ``math.pi``, a module constant
    holding one, or arithmetic on those."""
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        return _kind(node.operand, constants, aliases)
    if isinstance(node, ast.Constant) and isinstance(node.value, (bool, int, float)):
        return type(node.value).__name__
    if isinstance(node, ast.Name):
        return constants.get(node.id)
    path = dotted(node.func if isinstance(node, ast.Call) else node, aliases) if node is not None else None
    if path and path.startswith("math."):
        return "int" if path[5:] in INT_FUNCTIONS else "float"
    if isinstance(node, ast.BinOp):
        kinds = {_kind(node.left, constants, aliases), _kind(node.right, constants, aliases)}
        if None in kinds:
            return None
        return "float" if "float" in kinds or isinstance(node.op, ast.Div) else "int"
    return None


def _helper_annotations(tree: ast.Module, entry: ast.FunctionDef, aliases: dict[str, str]) -> dict[ast.arg, str]:
    """Unannotated parameters of helpers that only ever receive plain numbers, with their type."""
    constants: dict[str, str] = {}
    for node in tree.body:
        for name, value in _bindings(node).items():
            kind = _kind(value, constants, aliases)
            if kind:
                constants[name] = kind
    calls: dict[str, list[ast.Call]] = {}
    for call in ast.walk(tree):
        if isinstance(call, ast.Call) and isinstance(call.func, ast.Name):
            calls.setdefault(call.func.id, []).append(call)
    out: dict[ast.arg, str] = {}
    for fn in tree.body:
        if not isinstance(fn, ast.FunctionDef) or fn is entry:
            continue
        positional = [*fn.args.posonlyargs, *fn.args.args]
        defaults = dict(zip(reversed(positional), reversed(fn.args.defaults)))
        defaults |= {a: d for a, d in zip(fn.args.kwonlyargs, fn.args.kw_defaults) if d is not None}
        for index, arg in enumerate([*positional, *fn.args.kwonlyargs]):
            if arg.annotation is not None:
                continue
            kinds = {_kind(defaults.get(arg), constants, aliases)} if arg in defaults else set()
            for call in calls.get(fn.name, []):
                passed = [k.value for k in call.keywords if k.arg == arg.arg]
                if index < len(positional) and index < len(call.args):
                    passed.append(call.args[index])
                kinds |= {_kind(value, constants, aliases) for value in passed}
            if len(kinds) == 1 and None not in kinds:
                out[arg] = kinds.pop()  # type: ignore[assignment]
    return out
