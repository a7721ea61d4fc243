"""Shared helpers for the benchmarks: machine info, result files, tables."""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

ROOT = Path(__file__).resolve().parent.parent
RESULTS = ROOT / "benchmarks" / "results"
console = Console()


def machine() -> dict:
    import torch

    return {"python": platform.python_version(), "torch": torch.__version__, "cpus": os.cpu_count(),
            "cuda": torch.cuda.is_available(), "platform": platform.platform(),
            "load_average": os.getloadavg()[0] if hasattr(os, "getloadavg") else None}


def save(name: str, payload: dict, path: Path | None = None) -> Path:
    """Write results to a new file (or over ``path``, the file an earlier call of a run wrote)."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = path or RESULTS / f"{name}-{time.strftime('%Y%m%d-%H%M%S')}.json"
    path.write_text(json.dumps({"benchmark": name, "machine": machine(), **payload}, indent=2))
    console.print(f"[dim]results written to {path.relative_to(ROOT)}[/]")
    return path


def table(title: str, columns: list[str], rows: list[list]) -> None:
    t = Table(title=title, title_justify="left")
    for c in columns:
        t.add_column(c, justify="right" if c != columns[0] else "left")
    for r in rows:
        t.add_row(*[f"{v:,.0f}" if isinstance(v, float) and abs(v) >= 100 else
                    (f"{v:.2f}" if isinstance(v, float) else str(v)) for v in r])
    console.print(t)


def run_timed(cmd: list[str], env: dict | None = None, timeout: float = 3600) -> tuple[float, str]:
    """Run a whole command as a user would; return its wall time and stdout."""
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, env={**os.environ, **(env or {})}, timeout=timeout,
                          cwd=ROOT)
    wall = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stderr[-3000:]}")
    return wall, proc.stdout


PYTHON = sys.executable
