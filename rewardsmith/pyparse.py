"""``ast.parse`` behind one process-wide lock.

CPython 3.11's AST constructor keeps its recursion depth in state that all threads share, so two
threads parsing at once can fail with ``SystemError: AST constructor recursion depth mismatch``
(python/cpython#106905). The host parses untrusted reward code in several threads at once (the
critic reviews an iteration's candidates side by side), so every parse on the host goes here.
"""

from __future__ import annotations

import ast
import threading
from typing import Any

_LOCK = threading.Lock()


def parse(source: str, mode: str = "exec") -> Any:  # ast.Module, or ast.Expression with mode="eval"
    with _LOCK:
        return ast.parse(source, mode=mode)
