"""rewardsmith as `pip install` gives it: the wheel carries the prompts, the shipped tasks and what
builds the Docker image; installed in a clean venv it lists and finds shipped tasks by name,
builds its own image and trains a shipped task in Docker, from a folder outside the checkout."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
from conftest import GOOD_CARTPOLE_REWARD, ROOT, sandbox_unavailable

TORCH = "torch==2.13.0"  # the CPU wheel on disk (a bare torch would pull a CUDA build)


def _run(cmd, timeout=900, **kwargs):
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kwargs)
    assert proc.returncode == 0, f"{' '.join(map(str, cmd))}\n{proc.stdout[-2000:]}\n{proc.stderr[-3000:]}"
    return proc


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    src = tmp / "src"  # build from a copy: building writes build/ and *.egg-info next to the sources
    src.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(ROOT / name, src / name)
    for name in ("rewardsmith", "prompts", "tasks", "sandbox"):
        shutil.copytree(ROOT / name, src / name, symlinks=True, ignore=shutil.ignore_patterns("__pycache__"))
    _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(tmp / "dist"),
          str(src)], timeout=300)
    [built] = (tmp / "dist").glob("rewardsmith-*.whl")
    return built


def test_the_wheel_carries_prompts_tasks_and_the_sandbox_files(wheel):
    names = set(zipfile.ZipFile(wheel).namelist())
    for template in (ROOT / "prompts").glob("*.md"):
        if template.name != "README.md":
            assert f"rewardsmith/prompts/{template.name}" in names
    for task in (ROOT / "tasks").glob("*.yaml"):
        assert f"rewardsmith/tasks/{task.name}" in names
    for name in ("Dockerfile", "make-base.sh", "requirements.txt"):
        assert f"rewardsmith/sandbox/{name}" in names


@pytest.mark.docker
@pytest.mark.timeout(1800)
def test_installed_wheel_builds_its_image_and_trains_a_shipped_task_by_name(wheel, tmp_path):
    reason = sandbox_unavailable("docker")
    if reason is not None and "no Docker engine" in reason:
        pytest.skip(f"docker sandbox not available: {reason}")
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", str(venv)])
    # the same versions as this venv (so the image's wheels and layers are the cached ones); MuJoCo
    # as a user of the MuJoCo tasks installs it
    from rewardsmith.runners.sandboxes.image_packages import host_constraints

    constraints = tmp_path / "constraints.txt"
    constraints.write_text("\n".join(host_constraints()) + "\n")
    # --no-compile: byte-compiling torch's files takes most of its install (28 s against 8 s here);
    # Python compiles what it imports anyway
    pip = [str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-compile",
           "-c", str(constraints)]
    _run([*pip, TORCH])
    _run([*pip, f"{wheel}[docker,mujoco]"])
    exe = str(venv / "bin" / "rewardsmith")
    elsewhere = tmp_path / "elsewhere"  # no checkout around: everything comes from the installed wheel
    elsewhere.mkdir()
    env = {**os.environ, "REWARDSMITH_SANDBOX_IMAGE": "rewardsmith-wheel-test"}  # its own image, from its files
    env.pop("PYTHONPATH", None)
    try:
        listed = _run([exe, "tasks"], cwd=elsewhere, env=env)
        assert "cartpole" in listed.stdout and "halfcheetah_backward" in listed.stdout
        built = _run([exe, "sandbox", "build"], cwd=elsewhere, env=env, timeout=1800)
        assert built.stdout.strip().startswith("rewardsmith-wheel-test:")
        assert "torch==" in built.stderr and "mujoco==" in built.stderr  # it says what went in
        (elsewhere / "reward.py").write_text(GOOD_CARTPOLE_REWARD)
        trained = _run([exe, "train", "cartpole", "--reward", "reward.py", "--sandbox", "docker",
                        "--total-timesteps", "2048", "--json", "--out", "run"], cwd=elsewhere, env=env)
        line = json.loads(trained.stdout.strip().splitlines()[-1])
        assert line["status"] == "ok" and line["env_steps"] >= 2048, line
        assert json.loads((elsewhere / "run" / "result.json").read_text())["sandbox"] == "docker"
    finally:
        subprocess.run(["docker", "image", "rm", "-f", *_images("rewardsmith-wheel-test")], capture_output=True)


def _images(repository: str) -> list[str]:
    done = subprocess.run(["docker", "images", "--format", "{{.Repository}}:{{.Tag}}", repository],
                          capture_output=True, text=True)
    return done.stdout.split() or ["none"]
