"""The sandbox seam: where a guest job runs, with what isolation and limits.

Backends, registered by name: ``bwrap`` (bubblewrap namespaces), ``docker`` (a fresh container
of the image built from ``sandbox/``, see :mod:`.image`) and ``process`` (rlimits only, marked
unsafe). :mod:`.base` holds what they share: the seam's one method ``run_worker``, limits, the
capped output, and killing every running job on Ctrl-C.
"""

from __future__ import annotations

import importlib

from ...errors import SandboxUnavailable
from .base import Limits, Sandbox, SandboxResult, kill_all

__all__ = ["SANDBOXES", "Limits", "Sandbox", "SandboxResult", "kill_all", "make_sandbox"]

SANDBOXES: dict[str, str] = {
    "docker": "rewardsmith.runners.sandboxes.docker:DockerSandbox",
    "bwrap": "rewardsmith.runners.sandboxes.bwrap:BwrapSandbox",
    "process": "rewardsmith.runners.sandboxes.process:ProcessSandbox",
}


def make_sandbox(name: str) -> Sandbox:
    """Build a sandbox backend by name (``auto`` picks the safest one that works here)."""
    if name == "auto":
        skipped = []
        for candidate in ("docker", "bwrap"):
            try:
                return make_sandbox(candidate)
            except SandboxUnavailable as exc:
                skipped.append(f"{candidate}: {exc}")
        box = make_sandbox("process")
        box.skipped = skipped
        return box
    target = SANDBOXES.get(name)
    if target is None:
        raise SandboxUnavailable(f"unknown sandbox {name!r} (known: auto, {', '.join(SANDBOXES)})")
    module, _, cls = target.partition(":")
    return getattr(importlib.import_module(module), cls)()
