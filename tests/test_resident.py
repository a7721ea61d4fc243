"""Resident warm workers (runners/sandboxes/resident.py): a per-user service that keeps warm
sandboxes between commands. Each test runs its own service, in a runtime folder of its own, in
bwrap and in Docker: commands use it one after another, a reward still cannot leave anything
for the next one, a host that dies mid-job has its job killed, and a stop leaves nothing behind.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
import uuid

import pytest
import yaml
from conftest import GOOD_CARTPOLE_REWARD, ROOT, TASKS, command_lines, sandbox_unavailable
from test_warm import LEAVE, LIMITS, PROBE

from rewardsmith.runners.jobs import check_reward
from rewardsmith.runners.sandboxes import resident
from rewardsmith.runners.sandboxes.warm import WARM_NOTE
from rewardsmith.task import TaskSpec

BACKENDS = [pytest.param("bwrap"), pytest.param("docker", marks=pytest.mark.docker)]
ENDLESS_TRAIN = '''
import torch


def compute_reward(pole_angle: torch.Tensor):
    if pole_angle.shape[0] > 1:  # the training's batch, not the dry run's single steps
        while True:
            pass
    return torch.exp(-pole_angle.abs()), {}
'''


@pytest.fixture
def runtime(tmp_path, monkeypatch):
    """A runtime folder of this test's own: its service is nobody else's."""
    folder = tmp_path / "rt"
    folder.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(folder))
    return folder


@pytest.fixture
def service(request, runtime):
    backend = request.param
    reason = sandbox_unavailable(backend)
    if reason:
        pytest.skip(f"{backend} sandbox not available: {reason}")
    yield backend
    resident.stop(backend)


def cli(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "rewardsmith", *args], cwd=ROOT, env=dict(os.environ),
                          capture_output=True, text=True, timeout=timeout)


def first_lines(folder) -> list[str]:
    return [log.read_text().splitlines()[0] for log in sorted(folder.glob("*.log"))]


def worker_ids(lines: list[str]) -> set[int]:
    return {int(re.match(r"\[warm worker (\d+)", line).group(1)) for line in lines}


@pytest.fixture(scope="module")
def task() -> TaskSpec:
    return TaskSpec.model_validate(yaml.safe_load((TASKS / "cartpole.yaml").read_text()))


@pytest.mark.parametrize("service", BACKENDS, indirect=True)
def test_commands_one_after_another_run_on_the_resident_workers(service, tmp_path):
    started = cli("workers", "start", "--sandbox", service, "--task", "cartpole", "--workers", "2")
    assert started.returncode == 0, started.stderr
    assert ": 2 ready, 0 busy" in started.stdout, started.stdout
    reward = tmp_path / "reward.py"
    reward.write_text(GOOD_CARTPOLE_REWARD)
    seen = []
    for name in ("one", "two"):
        done = cli("train", "tasks/cartpole.yaml", "--reward", str(reward), "--sandbox", service,
                   "--total-timesteps", "2048", "--json", "--out", str(tmp_path / name))
        assert done.returncode == 0, done.stderr
        assert json.loads(done.stdout.splitlines()[-1])["status"] == "ok"
        lines = first_lines(tmp_path / name)
        assert len(lines) == 3 and all(line.startswith(WARM_NOTE) and resident.RESIDENT_NOTE in line
                                       for line in lines), lines
        seen.append(worker_ids(lines))
    assert seen[0] | seen[1] <= {0, 1}, seen  # both ran on the two workers `start` warmed: none started since
    status = cli("workers", "status")
    assert f"resident {service} workers" in status.stdout and "6 jobs served" in status.stdout, status.stdout


@pytest.mark.parametrize("service", BACKENDS, indirect=True)
def test_a_reward_leaves_nothing_for_the_next_command_on_the_resident_workers(service, task, tmp_path):
    resident.start(service)
    token = f"leave{uuid.uuid4().hex[:10]}"
    results = []
    for name, code in (("a", LEAVE), ("b", PROBE)):
        box, why = resident.connect(sandbox(service), task.env.model_dump(mode="json"), 1, LIMITS)
        assert box is not None, why
        results.append(check_reward(task, code.replace("TOKEN-VALUE", token), tmp_path / name, box, LIMITS))
    first, probe = (tmp_path / name / "check.log" for name in ("a", "b"))
    assert all(r.ok for r in results), [r.reason for r in results]
    assert "WROTE /job\n" in first.read_text() and "SHM -1" not in first.read_text()
    assert worker_ids([first.read_text().splitlines()[0]]) == worker_ids([probe.read_text().splitlines()[0]])
    assert "LEFTOVERS []" in probe.read_text(), probe.read_text()
    assert not command_lines(token), "a process of the first job still runs"


@pytest.mark.parametrize("service", BACKENDS, indirect=True)
def test_a_host_that_dies_mid_job_has_its_job_killed_and_its_folder_back(service, tmp_path):
    resident.start(service)
    reward = tmp_path / "endless.py"
    reward.write_text(ENDLESS_TRAIN)
    out = tmp_path / "run"
    host = subprocess.Popen([sys.executable, "-m", "rewardsmith", "train", "tasks/cartpole.yaml", "--reward",
                             str(reward), "--sandbox", service, "--out", str(out)], cwd=ROOT, env=dict(os.environ),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while not (resident.ask(service, {"op": "status"}) or {}).get("running") and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(2)  # into the endless training
    os.killpg(host.pid, signal.SIGKILL)
    host.wait()
    while (resident.ask(service, {"op": "status"}) or {}).get("running") and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not resident.ask(service, {"op": "status"})["running"], "the dead host's job still runs"
    work = out / "work"  # the training's job folder: its own files again, not a path into the slot
    assert not work.is_symlink() and (work / "reward.py").is_file() and (work / "job.json").is_file()


@pytest.mark.parametrize("service", BACKENDS, indirect=True)
def test_a_stop_leaves_nothing_behind(service, task):
    status = resident.start(service)
    resident.warm(service, task.env.model_dump(mode="json"), LIMITS, 1)
    assert resident.stop(service)
    assert not resident.socket_path(service).exists()
    assert not command_lines(str(status["pid"]), "resident") and not command_lines("rewardsmith.runners.warm_guest")
    if service == "docker":
        import docker

        left = docker.from_env().containers.list(all=True, filters={"label": "rewardsmith.job"})
        assert not left, left
    assert "stopped" in resident.log_path(service).read_text()
    assert cli("workers", "status").stdout.startswith("no resident warm workers")


def test_a_service_of_other_code_is_not_used(runtime, task, monkeypatch):
    """A host whose code differs from the service's (an edited checkout, another image) starts its own pool."""
    if sandbox_unavailable("bwrap"):
        pytest.skip("bwrap not available")
    resident.start("bwrap")
    try:
        monkeypatch.setattr(resident, "fingerprint", lambda box: "something else")
        box, why = resident.connect(sandbox("bwrap"), task.env.model_dump(mode="json"), 1, LIMITS)
        assert box is None and "run other code" in why
    finally:
        resident.stop("bwrap")


def test_the_service_folder_must_be_private(tmp_path, monkeypatch):
    shared = tmp_path / "shared"
    (shared / "rewardsmith").mkdir(parents=True, mode=0o755)
    os.chmod(shared / "rewardsmith", 0o755)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(shared))
    from rewardsmith.errors import SandboxUnavailable

    with pytest.raises(SandboxUnavailable, match="not a private folder"):
        resident.socket_path("bwrap")
    assert resident.ask("bwrap", {"op": "status"}) is None


def sandbox(backend: str):
    from rewardsmith.runners.sandboxes import make_sandbox

    return make_sandbox(backend)
