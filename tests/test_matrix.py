"""Every shipped task in every sandbox, at a tiny budget, through the CLI as a user runs it: the
builtin designer's reward passes the dry run, trains a few hundred steps, is evaluated in a clean
job, and its episode is recorded as a video. MuJoCo tasks included (in Docker that needs the
image to carry MuJoCo and OSMesa).

The runs go two at a time, started once for the module; each test checks one (task, sandbox).
"""

from __future__ import annotations

import json
import subprocess
import sys
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import pytest
from conftest import ROOT, TASKS, sandbox_unavailable

SANDBOXES = ["bwrap", "docker", "process"]
TASK_FILES = sorted(TASKS.glob("*.yaml"))
TINY = ["--iterations", "1", "--samples", "1", "--total-timesteps", "256",
        "--set", "env.max_episode_steps=20", "--set", "fitness.eval_episodes=2", "--set", "env.num_envs=4",
        "--set", "sandbox.timeout_s=600"]


def _solve(task: Path, sandbox: str, out: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rewardsmith", "solve", str(task), "--sandbox", sandbox,
                           "--model", "builtin", "--out", str(out), *TINY],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)


@pytest.fixture(scope="module")
def matrix_runs(request, tmp_path_factory) -> dict[tuple[str, str], tuple[Path, Future]]:
    root = tmp_path_factory.mktemp("matrix")
    usable = [s for s in SANDBOXES if sandbox_unavailable(s) is None]
    selected = {item.callspec.id for item in request.session.items  # only what this session runs (-k)
                if getattr(item, "originalname", None) == "test_shipped_task_runs_in_sandbox"}
    pool = ThreadPoolExecutor(max_workers=2)
    runs = {}
    for sandbox in usable:
        for task in TASK_FILES:
            if f"{task.stem}-{sandbox}" in selected:
                out = root / f"{task.stem}-{sandbox}"
                runs[(task.stem, sandbox)] = (out, pool.submit(_solve, task, sandbox, out))
    yield runs
    pool.shutdown(wait=True, cancel_futures=True)


def _param(task: Path, sandbox: str):
    marks = [pytest.mark.docker] if sandbox == "docker" else []
    return pytest.param(task.stem, sandbox, marks=marks, id=f"{task.stem}-{sandbox}")


@pytest.mark.parametrize("task, sandbox", [_param(t, s) for s in SANDBOXES for t in TASK_FILES])
def test_shipped_task_runs_in_sandbox(task: str, sandbox: str, matrix_runs):
    reason = sandbox_unavailable(sandbox)
    if reason is not None:
        pytest.skip(f"{sandbox} sandbox not available: {reason}")
    out, future = matrix_runs[(task, sandbox)]
    proc = future.result()
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["sandbox"] == sandbox and summary["status"] == "done", summary
    [line] = summary["candidates"]
    assert line["status"] == "ok", line  # the dry run passed, it trained and was evaluated
    candidate = out / "iter_00" / "cand_00"
    result = json.loads((candidate / "result.json").read_text())
    assert result["sandbox"] == sandbox and result["fitness"] is not None and result["train"]["env_steps"] > 0
    assert json.loads((candidate / "check.json").read_text())["ok"]
    for name in ("policy.pt", "rollout.json", "rollout.mp4", "rollout.gif"):
        assert (candidate / name).is_file() and (candidate / name).stat().st_size > 0, (
            f"{name} missing; train.log: {(candidate / 'train.log').read_text()[-1500:]}")
    assert "rollout not recorded" not in (candidate / "train.log").read_text()
