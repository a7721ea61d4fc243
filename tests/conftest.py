import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
TASKS = ROOT / "tasks"
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


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
