"""A sandbox that cannot build the task's env (a package the host has is missing there) stops the
run with the fix; no reward is blamed. ``--sandbox auto`` takes Docker only where its image can
run the task, and says why when it does not."""

from __future__ import annotations

import json
import sysconfig
import uuid
from pathlib import Path

import pytest
from conftest import GOOD_CARTPOLE_REWARD, TASKS, run_cli, sandbox_unavailable

MODULE = "from rewardsmith.envs.isaacgym.example import make_cartpole  # noqa: F401\n"
REWARD = '''import torch

def compute_reward(dof_pos):
    upright = torch.cos(dof_pos[:, 1])
    return upright, {"upright": upright}
'''


def _task(tmp_path: Path, module: str) -> Path:
    text = (TASKS / "vectask_cartpole.yaml").read_text()
    text = text.replace("rewardsmith.envs.isaacgym.example:make_cartpole", f"{module}:make_cartpole")
    path = tmp_path / "task.yaml"
    path.write_text(text)
    return path


def _one_error_line(proc) -> str:
    assert proc.returncode == 2, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    [line] = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    return line


@pytest.mark.skipif(sandbox_unavailable("bwrap") is not None, reason="bubblewrap cannot run here")
def test_an_env_the_sandbox_cannot_build_stops_the_run_with_the_fix(tmp_path):
    # the env's module is importable on the host (PYTHONPATH) but bwrap shows the job only the
    # Python install and its packages
    module = f"rs_loose_{uuid.uuid4().hex[:8]}"
    (tmp_path / f"{module}.py").write_text(MODULE)
    task = _task(tmp_path, module)
    (tmp_path / "reward.py").write_text(REWARD)
    env = {"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin", "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    train = run_cli("train", str(task), "--reward", str(tmp_path / "reward.py"), "--sandbox", "bwrap",
                    "--out", str(tmp_path / "train"), env=env)
    line = _one_error_line(train)
    assert f"the bwrap sandbox cannot build isaacgym:{module}:make_cartpole (the host can)" in line
    assert "No module named" in line and "install the env's package" in line
    assert not (tmp_path / "train" / "result.json").exists()  # no candidate recorded for it

    solve = run_cli("solve", str(task), "--sandbox", "bwrap", "--iterations", "1", "--samples", "2",
                    "--out", str(tmp_path / "run"), env=env)
    assert "cannot build" in _one_error_line(solve)
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "stopped" and summary["candidates"] == []  # no reward was blamed
    assert "--resume" in solve.stderr


@pytest.fixture
def env_in_site_packages():
    """An env module installed in this Python environment (bwrap sees it) that the Docker image,
    built before it, does not carry."""
    module = f"rs_planted_{uuid.uuid4().hex[:8]}"
    path = Path(sysconfig.get_paths()["purelib"]) / f"{module}.py"
    path.write_text(MODULE)
    try:
        yield module
    finally:
        path.unlink(missing_ok=True)


@pytest.mark.docker
def test_auto_takes_docker_only_where_its_image_runs_the_task(tmp_path, env_in_site_packages):
    for backend in ("docker", "bwrap"):
        reason = sandbox_unavailable(backend)
        if reason is not None:
            pytest.skip(f"{backend} sandbox not available: {reason}")
    module = env_in_site_packages
    task = _task(tmp_path, module)
    (tmp_path / "reward.py").write_text(REWARD)
    auto = run_cli("train", str(task), "--reward", str(tmp_path / "reward.py"), "--sandbox", "auto",
                   "--total-timesteps", "512", "--json", "--out", str(tmp_path / "auto"))
    assert auto.returncode == 0, auto.stderr[-3000:]
    assert json.loads(auto.stdout.strip().splitlines()[-1])["status"] == "ok"
    assert json.loads((tmp_path / "auto" / "result.json").read_text())["sandbox"] == "bwrap"
    [why] = [line for line in auto.stderr.splitlines() if line.startswith("sandbox: bwrap")]
    assert f"docker: the docker sandbox cannot build isaacgym:{module}:make_cartpole" in why
    assert "rewardsmith sandbox build --task" in why

    docker = run_cli("train", str(task), "--reward", str(tmp_path / "reward.py"), "--sandbox", "docker",
                     "--out", str(tmp_path / "docker"))
    assert "rewardsmith sandbox build --task" in _one_error_line(docker)
    assert not (tmp_path / "docker").exists()  # refused before anything was written

    # a task the image does run still goes to Docker under auto
    (tmp_path / "good.py").write_text(GOOD_CARTPOLE_REWARD)
    cartpole = run_cli("train", str(TASKS / "cartpole.yaml"), "--reward", str(tmp_path / "good.py"),
                       "--total-timesteps", "512", "--json", "--out", str(tmp_path / "cartpole"))
    assert cartpole.returncode == 0, cartpole.stderr[-3000:]
    assert json.loads((tmp_path / "cartpole" / "result.json").read_text())["sandbox"] == "docker"
