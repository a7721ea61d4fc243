"""The sandbox backends: choice of backend, how failures are named, Ctrl-C with Docker."""

import json
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from conftest import ROOT, TASKS, sandbox_unavailable

from rewardsmith.errors import SandboxUnavailable
from rewardsmith.runners.jobs import explain_blocked
from rewardsmith.runners.sandboxes import make_sandbox
from rewardsmith.runners.sandboxes.base import Limits, SandboxResult, signal_from_status


def usable(name: str) -> bool:
    return sandbox_unavailable(name) is None


def test_auto_picks_the_safest_available_backend():
    box = make_sandbox("auto")
    expected = "docker" if usable("docker") else "bwrap" if usable("bwrap") else "process"
    assert box.name == expected
    assert box.safe == (expected != "process")
    if expected == "process":
        assert box.skipped  # says why docker and bwrap were not used


def test_unknown_sandbox_is_a_user_error():
    with pytest.raises(SandboxUnavailable, match="unknown sandbox 'nope'"):
        make_sandbox("nope")


def test_exit_statuses_of_inits_become_signals():
    assert signal_from_status(139) == -11 and signal_from_status(137) == -9
    assert signal_from_status(1) == 1 and signal_from_status(0) == 0 and signal_from_status(None) is None
    crashed = SandboxResult(returncode=signal_from_status(139), output="", wall_s=1.0)
    assert crashed.failure_reason(Limits()) == "crashed with signal SIGSEGV"
    oom = SandboxResult(returncode=-9, output="", wall_s=1.0, oom_killed=True)
    assert oom.failure_reason(Limits(memory_mb=512)) == "out of memory (limit 512 MB)"


def test_blocked_attempts_are_named():
    assert explain_blocked("OSError: [Errno 101] Network is unreachable (reward.py line 3)").startswith(
        "tried to use the network")
    assert explain_blocked("OSError: [Errno 30] Read-only file system: '/x'").startswith("tried to write outside")
    assert explain_blocked("ValueError: bad") == "ValueError: bad"


def test_sandbox_check_lists_backends():
    proc = subprocess.run([sys.executable, "-m", "rewardsmith", "sandbox", "check"], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "process" in proc.stdout and "auto" in proc.stdout
    bad = subprocess.run([sys.executable, "-m", "rewardsmith", "sandbox", "check", "nope"], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and bad.stderr.startswith("error: unknown sandbox")


@pytest.mark.skipif(not usable("bwrap"), reason="bubblewrap cannot run here")
def test_bwrap_job_sees_a_minimal_filesystem(tmp_path):
    from rewardsmith.runners.sandboxes.bwrap import BwrapSandbox

    box = BwrapSandbox()
    job = tmp_path / "job"
    job.mkdir()
    argv = box.command("check", job, Limits())
    script = ("import json, os; open('/job/x', 'w').write('ok'); "
              "print(json.dumps([sorted(os.listdir('/')), os.getuid(), sorted(os.environ)]))")
    argv = argv[:argv.index("--") + 1] + [sys.executable, "-I", "-c", script]
    env = {**box.environment(job, Limits()), "OPENAI_API_KEY": "sk-secret"}  # --clearenv drops it
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    top, uid, names = json.loads(proc.stdout)
    assert "home" not in top and "var" not in top and "job" in top
    assert uid == 1000 and "OPENAI_API_KEY" not in names and "HOME" in names
    assert (job / "x").read_text() == "ok"


@pytest.mark.skipif(not usable("bwrap"), reason="bubblewrap cannot run here")
def test_bwrap_binds_host_paths_under_tmp(tmp_path):
    """A checkout or venv under the host's /tmp stays visible beside the sandbox's private /tmp."""
    from rewardsmith.runners.sandboxes.bwrap import BwrapSandbox

    box = BwrapSandbox()
    venv = Path(tempfile.mkdtemp(prefix="rs-venv-", dir="/tmp"))
    try:
        (venv / "marker").write_text("here")
        box.binds = box.binds + ["--ro-bind", str(venv), str(venv)]
        job = tmp_path / "job"
        job.mkdir()
        argv = box.command("check", job, Limits())
        argv = argv[:argv.index("--") + 1] + [sys.executable, "-I", "-c",
                                              f"print(open({str(venv / 'marker')!r}).read())"]
        proc = subprocess.run(argv, capture_output=True, text=True, timeout=60)
        assert proc.returncode == 0 and proc.stdout.strip() == "here", proc.stderr
    finally:
        shutil.rmtree(venv)


@pytest.mark.docker
@pytest.mark.skipif(not usable("docker"), reason="no Docker engine or sandbox image here")
def test_ctrl_c_removes_the_container(tmp_path):
    import docker

    reward = tmp_path / "loop.py"
    reward.write_text((ROOT / "tests" / "hostile" / "endless_loop.py").read_text())
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, "-m", "rewardsmith", "train", str(TASKS / "cartpole.yaml"), "--reward",
                             str(reward), "--sandbox", "docker", "--timeout", "300", "--json", "--out", str(out)],
                            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    client = docker.from_env()
    label = {"label": f"rewardsmith.job={(out / 'work').resolve()}"}
    deadline = time.time() + 120
    while not client.containers.list(filters=label) and time.time() < deadline:
        time.sleep(0.5)
    assert client.containers.list(filters=label), "the job's container never started"
    proc.send_signal(signal.SIGINT)
    proc.communicate(timeout=60)
    assert client.containers.list(all=True, filters=label) == []
    result = json.loads((out / "result.json").read_text()) if (out / "result.json").exists() else None
    assert result is None or result["status"] != "ok"
