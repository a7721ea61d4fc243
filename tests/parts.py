"""What the test suite will find here, printed by `make test` before pytest starts: each sandbox
and each other part a test needs (tmux, Chromium, OSMesa, Ray, CUDA), working or not and why.
Without CI set, tests whose part is missing skip; with CI set, they fail (tests/conftest.py).

    python tests/parts.py
"""

from __future__ import annotations

import ctypes.util
import importlib.util
import os
import shutil
import sys


def sandboxes() -> list[tuple[str, bool, str]]:
    from rewardsmith.errors import SandboxUnavailable
    from rewardsmith.runners.sandboxes import SANDBOXES, make_sandbox

    out = []
    for name in SANDBOXES:
        try:
            box = make_sandbox(name)
        except SandboxUnavailable as exc:
            out.append((f"sandbox {name}", False, str(exc)))
            continue
        detail = getattr(box, "image", "") or ("no isolation" if not box.safe else "")
        out.append((f"sandbox {name}", True, detail))
    return out


def others() -> list[tuple[str, bool, str]]:
    out = []
    for tool in ("tmux", "chromium"):
        path = shutil.which(tool)
        out.append((tool, path is not None, path or "not installed (scripts/system-deps.sh installs it)"))
    osmesa = ctypes.util.find_library("OSMesa")
    out.append(("OSMesa", osmesa is not None, osmesa or "libosmesa6 is not installed"))
    for module in ("ray", "mujoco", "stable_baselines3"):
        found = importlib.util.find_spec(module) is not None
        out.append((module, found, "" if found else "not installed (make test-install)"))
    try:
        import torch

        cuda = torch.cuda.is_available()
    except ImportError:
        cuda = False
    out.append(("CUDA", cuda, "" if cuda else "none: the gpu tests skip"))
    return out


def main() -> int:
    strict = bool(os.environ.get("CI"))
    print("parts the tests use" + (" (CI: a missing part fails its tests)" if strict else
                                   " (a missing part skips its tests; with CI set they fail)"))
    for name, ok, detail in [*sandboxes(), *others()]:
        print(f"  {name:18} {'ok     ' if ok else 'MISSING'} {detail}")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    sys.exit(main())
