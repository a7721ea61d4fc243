"""Find the reward code in a model's answer (markdown, prose, reasoning, cut-off fences).

>>> extract_code("Idea: keep it up.\\n```python\\ndef compute_reward(pole_angle):\\n    x = torch.exp(-pole_angle)\\n"
...              "    return x, {'x': x}\\n```\\nThat's all.").splitlines()[:2]
['import torch', 'def compute_reward(pole_angle):']
>>> extract_code("I cannot help with that.") is None
True
"""

from __future__ import annotations

import re

from ..contract import ENTRY_POINT, with_prelude_imports
from ..pyparse import parse

FENCE = re.compile(r"^[ \t]*(```+|~~~+)[ \t]*([\w+.-]*)[^\n]*\n(.*?)(?:^[ \t]*\1[ \t]*$|\Z)", re.S | re.M)
THINKING = re.compile(r"<(think|thinking|reasoning)>.*?</\1>", re.S | re.I)
DEFINITION = re.compile(rf"^[ \t]*def\s+{ENTRY_POINT}\s*\(", re.M)
IMPORT = re.compile(r"^[ \t]*(import|from)\s+\w")
DECORATOR = re.compile(r"^[ \t]*@[\w.]+")  # @torch.jit.script above the definition


def extract_code(answer: str) -> str | None:
    """The code that defines ``compute_reward``, or ``None`` when the answer has none.

    Fenced blocks come first (the last one that defines the function: models revise as they
    go); an unterminated fence runs to the end; without fences, the longest stretch of lines
    around the definition that parses. Imports are added for the names the contract's prelude
    gives (``torch``, ``math``, ``Tensor``, ``Tuple``, ``Dict``...) that the code uses without
    importing them, so that the stored ``reward.py`` runs outside rewardsmith too.
    """
    text = THINKING.sub("", answer or "")
    blocks = [m.group(3) for m in FENCE.finditer(text)]
    defining = [b for b in blocks if DEFINITION.search(b)]
    code = defining[-1] if defining else _unfenced(text)
    if code is None:
        return None
    code = _dedent(code).strip("\n") + "\n"
    return with_prelude_imports(code)


def _unfenced(text: str) -> str | None:
    matches = list(DEFINITION.finditer(text))
    if not matches:
        return None
    match = matches[-1]
    lines = text.splitlines()
    def_line = text[:match.start()].count("\n")
    start = def_line
    while start > 0 and (not lines[start - 1].strip() or IMPORT.match(lines[start - 1]) or DECORATOR.match(lines[start - 1])):
        start -= 1
    for end in range(len(lines), def_line, -1):  # the longest piece that parses
        piece = "\n".join(lines[start:end])
        try:
            parse(_dedent(piece))
            return piece
        except SyntaxError:
            continue
    return None


def _dedent(code: str) -> str:
    import textwrap

    return textwrap.dedent(code)
