import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TASKS = ROOT / "tasks"
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# Hostile reward files run only inside sandboxes. Never import them here (--doctest-modules
# would): some patch torch at import (torch.save writing symlinks, for one).
# The reward corpus (tests/rewards_corpus/) is data for tests/test_reward_forms.py, broken on purpose
# in places: never imported either.
collect_ignore_glob = ["hostile/*", "rewards_corpus/*"]

# A skip is not a pass: in CI a test whose part is missing (a sandbox, Docker, Chromium, tmux,
# OSMesa, Ray) fails instead of skipping. Only tests that need CUDA (marked gpu) may skip.
IN_CI = bool(os.environ.get("CI"))


def _may_skip(item) -> bool:
    return item.get_closest_marker("gpu") is not None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped and not _may_skip(item) and not hasattr(report, "wasxfail"):
        reason = report.longrepr[2] if isinstance(report.longrepr, tuple) else str(report.longrepr)
        reason = reason.removeprefix("Skipped: ")
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every part a test needs must be there: {reason}"


@pytest.hookimpl(hookwrapper=True)
def pytest_make_collect_report(collector):
    outcome = yield
    report = outcome.get_result()
    if IN_CI and report.skipped:  # a module skipped as a whole (importorskip)
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where every part a test needs must be there: {report.longrepr}"


@pytest.fixture
def cartpole_yaml() -> Path:
    return TASKS / "cartpole.yaml"


def run_cli(*args: str, cwd: Path | None = None, env: dict | None = None, timeout: float = 600):
    """Run the real console entry point in a subprocess, as a user would."""
    import subprocess

    return subprocess.run([sys.executable, "-m", "rewardsmith", *args], cwd=cwd or ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


GOOD_CARTPOLE_REWARD = '''
import torch

def compute_reward(pole_angle: torch.Tensor, cart_pos: torch.Tensor, action: torch.Tensor):
    upright = torch.exp(-pole_angle.abs() / 0.2)
    centered = torch.exp(-cart_pos.abs() / 2.4)
    return upright * centered, {"upright": upright, "centered": centered}
'''


def sandbox_unavailable(backend: str) -> str | None:
    """``None`` if the sandbox backend works here, else why not."""
    from rewardsmith.errors import SandboxUnavailable
    from rewardsmith.runners.sandboxes import make_sandbox

    try:
        make_sandbox(backend)
    except SandboxUnavailable as exc:
        return str(exc)
    return None


def command_lines(*words: str) -> list[str]:
    """Command lines of live processes, other than this test process, that contain every word
    (read from /proc: ps cuts long lines)."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        if cmdline.parent.name == str(os.getpid()):
            continue
        try:
            args = cmdline.read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if args and all(w in args for w in words):
            found.append(args)
    return found
