"""Every shipped task has a reference reward (the env's own, or a hand-written one where the env has
none) that benchmarks/reward_quality.py trains next to the builtin designer's; each fits its env."""

import importlib.util
import sys

import pytest
import torch
from conftest import ROOT, TASKS

from rewardsmith.critic import static_check
from rewardsmith.reward import RewardFunction
from rewardsmith.task import load_task

sys.path.insert(0, str(ROOT / "benchmarks"))
from reward_quality import reference_for  # noqa: E402


def _param(path):
    missing = "Meta-World/" in path.read_text() and importlib.util.find_spec("metaworld") is None
    return pytest.param(path, id=path.stem, marks=pytest.mark.skipif(missing, reason="needs the metaworld extra"))


@pytest.mark.parametrize("path", [_param(p) for p in sorted(TASKS.glob("*.yaml"))])
def test_reference_reward_fits_the_task(path):
    reference = reference_for(path.stem)
    assert reference is not None, f"{path.name} has no reference reward (tasks/rewards/{path.stem}_reference.py)"
    env = load_task(path).env.describe()
    code = reference.read_text()
    assert static_check(code, env.reward_arguments).ok
    n = 3
    state = {v.name: torch.zeros(n, *v.shape) for v in env.variables}
    action = torch.zeros(n) if env.action.kind == "discrete" else torch.zeros(n, env.action.size)
    total, parts = RewardFunction(code, env.reward_arguments).checked_call(state, action, n)
    assert torch.isfinite(total).all() and parts
