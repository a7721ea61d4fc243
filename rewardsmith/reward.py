"""The reward contract: load ``compute_reward`` from text, bind arguments by name, call it.

Loading executes the code, so for code written by a model this runs only inside a sandbox
(the worker). On the host, reward code is only parsed (see :mod:`rewardsmith.critic.static`; the contract both share is
:mod:`rewardsmith.contract`).

>>> import torch
>>> code = '''
... import torch
... def compute_reward(pole_angle, action):
...     upright = torch.exp(-pole_angle.abs())
...     return upright, {"upright": upright}
... '''
>>> fn = RewardFunction(code, allowed=["pole_angle", "cart_pos", "action"])
>>> total, parts = fn({"pole_angle": torch.zeros(3), "cart_pos": torch.zeros(3)}, torch.zeros(3))
>>> total.tolist(), list(parts), fn.runs_as
([1.0, 1.0, 1.0], ['upright'], 'python')

Eureka's form (``@torch.jit.script``, ``Tuple``/``Dict`` without an import) runs scripted where
TorchScript takes the code and the env's tensors, and as plain Python where it does not; the
loader says which (``runs_as``) and why (``torchscript_error``):

>>> eureka = '''
... @torch.jit.script
... def compute_reward(pole_angle: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
...     temperature: float = 0.5
...     upright = torch.exp(-torch.abs(pole_angle) / temperature)
...     return upright, {"upright": upright}
... '''
>>> fn = RewardFunction(eureka, allowed=["pole_angle", "action"])
>>> fn.parameters, fn.runs_as
(['pole_angle'], 'torchscript')
>>> fn({"pole_angle": torch.zeros(2)}, torch.zeros(2))[0].tolist()
[1.0, 1.0]
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
import linecache
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from types import CodeType
from typing import Any, Literal, cast

import torch

from .contract import ACTION, ENTRY_POINT, PRELUDE, bind_arguments, read_form, without_script
from .errors import RewardCodeError

RunsAs = Literal["python", "torchscript"]
# lines of a TorchScript error that are not its message: a function's schema, a source excerpt
SCHEMA_OR_SOURCE = re.compile(r"[\w.]+\(.*\) -> |File \"|.*<--- HERE|[~^ ]+$")


class RewardFunction:
    """A loaded reward function with its arguments bound to state variable names.

    Code that asks for TorchScript is loaded twice: as written (scripted as it loads) and as
    plain Python (the script decorators dropped). Calls go to the scripted function; should
    TorchScript refuse the code or the env's tensors, they go to the plain one from then on, and
    only an error the plain function raises too is the reward's.
    """

    def __init__(self, code: str, allowed: Sequence[str], filename: str | None = None):
        self.code = code
        filename = filename or f"<rewardsmith {hashlib.sha256(code.encode()).hexdigest()[:12]}>/reward.py"
        try:
            form = read_form(code)
            plain = compile(without_script(form) if form.scripted else form.tree, filename, "exec", dont_inherit=True)
        except SyntaxError as exc:
            raise RewardCodeError(f"line {exc.lineno}: {exc.msg}") from None
        except (ValueError, RecursionError, MemoryError) as exc:
            raise RewardCodeError(f"the code cannot be compiled: {exc}") from None
        _remember_source(filename, code)  # for tracebacks, and TorchScript reads the source
        try:
            namespace = _run(plain)
        except Exception as exc:
            raise RewardCodeError(f"the module failed while loading: {type(exc).__name__}: {exc}") from None
        self._python = _entry_point(namespace)
        self.parameters = _bind(self._python, allowed)
        self._keyword = _keyword_only(self._python)
        self._script: Any = None
        self.torchscript_error: str | None = None
        if form.scripted:
            try:
                self._script = _entry_point(_run(compile(code, filename, "exec", dont_inherit=True)))
            except Exception as exc:  # TorchScript's compiler refused it: plain Python it is
                self.torchscript_error = f"TorchScript cannot compile it: {_brief(exc)}"
        self.component_names: list[str] | None = None

    @classmethod
    def from_file(cls, path: str | Path, allowed: Sequence[str]) -> RewardFunction:
        path = Path(path)
        return cls(path.read_text(), allowed, filename=str(path))

    @property
    def runs_as(self) -> RunsAs:
        """``"torchscript"`` while calls go to the scripted function, else ``"python"``."""
        return "torchscript" if self._script is not None else "python"

    @property
    def fn(self):
        """The function calls go to now."""
        return self._script if self._script is not None else self._python

    def __call__(self, variables: Mapping[str, torch.Tensor], action: torch.Tensor
                 ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        return self.invoke(**{name: action if name == ACTION else variables[name] for name in self.parameters})

    def invoke(self, **values: torch.Tensor):
        """Call with the bound arguments by name (the reward's positional-only ones included)."""
        args = [values[name] for name in self.parameters if name not in self._keyword]
        kwargs = {name: values[name] for name in self._keyword}
        if self._script is None:
            return self._python(*args, **kwargs)
        try:
            return self._script(*args, **kwargs)
        except Exception as exc:
            out = self._python(*args, **kwargs)  # an error here is the reward's own, raised from its lines
            self._script = None
            self.torchscript_error = f"TorchScript cannot run it on the env's tensors: {_brief(exc)}"
            return out

    def checked_call(self, variables: Mapping[str, torch.Tensor], action: torch.Tensor,
                     num_envs: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """Call and check the output's structure and shapes (no device sync: values unchecked)."""
        out = self(variables, action)
        total, components = check_structure(out, num_envs)
        if self.component_names is None:
            self.component_names = list(components)
        elif list(components) != self.component_names:
            raise RewardCodeError(f"components changed between calls: {self.component_names} "
                                  f"then {list(components)}")
        return total, components


def _remember_source(filename: str, code: str) -> None:
    linecache.cache[filename] = (len(code), None, code.splitlines(keepends=True), filename)


def _run(module: CodeType) -> dict:
    """Execute a compiled reward module in a namespace that holds the contract's prelude."""
    namespace: dict = {"__name__": "rewardsmith_reward"}
    for name, (module_name, attr) in PRELUDE.items():
        value = importlib.import_module(module_name)
        namespace[name] = value if attr is None else getattr(value, attr)
    exec(module, namespace)  # noqa: S102 - sandboxed by the caller
    return namespace


def _entry_point(namespace: dict):
    fn = namespace.get(ENTRY_POINT)
    if not callable(fn):
        raise RewardCodeError(f"no function named {ENTRY_POINT}")
    return fn


def _brief(exc: BaseException) -> str:
    """The message of a (TorchScript) error in one line, with the reward's line it points at."""
    text = str(exc).strip()
    said = [line.strip() for line in text.splitlines() if re.search(r"[A-Za-z]", line)
            and not SCHEMA_OR_SOURCE.match(line.strip())]
    first = said[0] if said else type(exc).__name__
    where = re.search(r'reward\.py", line (\d+)', text)
    return first[:200] + (f" (reward.py line {where.group(1)})" if where else "")


def _parameters(fn) -> list[inspect.Parameter]:
    if isinstance(fn, torch.jit.ScriptFunction):  # no Python signature: read the TorchScript schema
        kind = inspect.Parameter.POSITIONAL_OR_KEYWORD
        return [inspect.Parameter(a.name, inspect.Parameter.KEYWORD_ONLY if a.kwarg_only else kind)
                for a in cast(Any, fn).schema.arguments]
    try:
        return list(inspect.signature(fn).parameters.values())
    except (TypeError, ValueError):
        raise RewardCodeError(f"{ENTRY_POINT} has no inspectable signature") from None


def _bind(fn, allowed: Sequence[str]) -> list[str]:
    parameters = _parameters(fn)
    if any(p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters):
        raise RewardCodeError(f"{ENTRY_POINT} must name its arguments (no *args or **kwargs)")
    return bind_arguments([p.name for p in parameters], allowed)


def _keyword_only(fn) -> set[str]:
    return {p.name for p in _parameters(fn) if p.kind == p.KEYWORD_ONLY}


def check_structure(out: object, num_envs: int) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Check that ``out`` is ``(total, {name: tensor})`` with one value per env everywhere."""
    if not isinstance(out, tuple) or len(out) != 2:
        raise RewardCodeError(f"{ENTRY_POINT} must return a pair (total, components), "
                              f"got {type(out).__name__}")
    total, components = out
    _check_tensor(total, "the total reward", num_envs)
    if not isinstance(components, dict):
        raise RewardCodeError(f"components must be a dict of named tensors, got {type(components).__name__}")
    for name, value in components.items():
        if not isinstance(name, str):
            raise RewardCodeError(f"component names must be strings, got {name!r}")
        _check_tensor(value, f"component {name!r}", num_envs)
    return total, components


def _check_tensor(value: object, what: str, num_envs: int) -> None:
    if not isinstance(value, torch.Tensor):
        raise RewardCodeError(f"{what} must be a torch tensor, got {type(value).__name__}")
    if tuple(value.shape) != (num_envs,):
        raise RewardCodeError(f"{what} has shape {tuple(value.shape)}; expected ({num_envs},), "
                              "one value per env")
    if not value.is_floating_point():
        raise RewardCodeError(f"{what} has dtype {value.dtype}; expected a float tensor")


def check_finite(total: torch.Tensor, components: Mapping[str, torch.Tensor]) -> None:
    """Raise if any value is NaN or infinite (syncs with the device; for dry runs)."""
    for what, value in [("the total reward", total), *((f"component {k!r}", v) for k, v in components.items())]:
        if not bool(torch.isfinite(value).all()):
            raise RewardCodeError(f"{what} contains NaN or infinite values")
