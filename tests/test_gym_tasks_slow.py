"""Full offline solves of the shipped gymnasium tasks (slow: minutes to hours on 2 cores)."""

import importlib.util
import json

import pytest
from conftest import TASKS, run_cli


@pytest.mark.slow
@pytest.mark.parametrize("task", [
    "pendulum_swingup_gym.yaml", "halfcheetah_backward.yaml", "hopper_hop_in_place.yaml",
    pytest.param("metaworld_reach.yaml", marks=pytest.mark.skipif(
        importlib.util.find_spec("metaworld") is None, reason="needs the metaworld extra")),
])
def test_gym_task_solves_with_the_builtin_designer(tmp_path, task):
    out = tmp_path / "run"
    proc = run_cli("solve", str(TASKS / task), "--model", "builtin", "--out", str(out), timeout=4 * 3600)
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best"] is not None and summary["best"]["success"], summary["best"]
