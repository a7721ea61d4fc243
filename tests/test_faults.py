"""Faults from outside the reward code: an LLM outage, a full disk, the Docker engine stopping.

Each stops the solve with a one-line error that says how to continue, keeps what was finished,
leaves no half-written file, and `--resume` then completes the run without redoing finished work.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import ROOT, run_cli, sandbox_unavailable
from fake_llm_server import FakeLLMServer
from llm_script import PRODUCT, WEIGHTED_SUM, Script, fenced

SECRET = "sk-test-7e21c0ffee-secret"


def _env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(REWARDSMITH_CACHE_DIR=str(tmp_path / "cache"), **extra)
    return env


def _intact(run: Path) -> None:
    """Every record parses and no temporary file is left."""
    for path in run.rglob("*.json"):
        json.loads(path.read_text())
    assert not list(run.rglob(".*.tmp"))


def _one_line_error(stderr: str, run: Path) -> str:
    assert "Traceback" not in stderr, stderr[-3000:]
    last = stderr.strip().splitlines()[-1]
    assert last.startswith("error: ") and f"rewardsmith solve --resume {run}" in last, stderr[-2000:]
    return last


def _finished(run: Path) -> dict[Path, int]:
    return {p: p.stat().st_mtime_ns for p in run.glob("iter_*/cand_*/result.json")}


def _candidates(run: Path) -> list[tuple[int, int]]:
    summary = json.loads((run / "summary.json").read_text())
    return [(c["iteration"], c["index"]) for c in summary["candidates"]]


def test_llm_outage_stops_and_resume_pays_for_nothing_twice(tmp_path):
    out = tmp_path / "run"
    args = ["solve", "tasks/cartpole.yaml", "--model", "openai/gpt-4o-mini", "--iterations", "2", "--samples", "2",
            "--sandbox", "process", "--total-timesteps", "30000", "--out", str(out)]
    # iteration 1 is designed, then the provider answers 503 to everything (beyond the retries)
    outage = Script(designer=[fenced(PRODUCT), fenced(WEIGHTED_SUM)] + [503] * 20)
    with FakeLLMServer(outage) as server:
        proc = run_cli(*args, "--api-base", server.url + "/v1", env=_env(tmp_path, OPENAI_API_KEY=SECRET))
    assert proc.returncode == 2
    assert "503" in _one_line_error(proc.stderr, out)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "stopped" and "gave up" in summary["stopped_reason"]
    assert _candidates(out) == [(0, 0), (0, 1)]
    _intact(out)
    finished = _finished(out)
    assert len(finished) == 2

    back = Script(designer=[fenced(WEIGHTED_SUM.replace("0.15", "0.25")), fenced(PRODUCT)])
    with FakeLLMServer(back) as server:
        proc = run_cli("solve", "--resume", str(out), "--api-base", server.url + "/v1",
                       env=_env(tmp_path, OPENAI_API_KEY=SECRET))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert _finished(out) | finished == _finished(out) and all(
        p.stat().st_mtime_ns == t for p, t in finished.items())  # iteration 1 was not retrained
    assert len(back.asked["designer"]) == 1  # only iteration 2 was asked for; nothing paid twice
    # the analyzer explains each iteration's best once: iteration 1's account was kept in the run
    assert len(outage.asked["analyzer"]) == 1 and len(back.asked["analyzer"]) == 1
    assert _candidates(out) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert json.loads((out / "summary.json").read_text())["status"] == "done"
    _intact(out)


@pytest.fixture
def small_disk(tmp_path):
    """A 64 MB tmpfs of our own, which the test can fill up (needs root to mount)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a small filesystem needs root")
    where = tmp_path / "disk"
    where.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(where)], capture_output=True,
                          text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield where
    subprocess.run(["umount", "-l", str(where)], check=False)


def _fill(folder: Path) -> Path:
    filler = folder / "filler"
    with open(filler, "wb") as f:
        try:
            while True:
                f.write(b"\0" * (1 << 20))
                f.flush()
        except OSError:
            pass
    return filler


def test_disk_full_stops_cleanly_and_resumes(small_disk):
    run = small_disk / "run"
    cmd = [sys.executable, "-m", "rewardsmith", "solve", "tasks/cartpole.yaml", "--iterations", "2", "--samples", "2",
           "--parallel", "1", "--sandbox", "process", "--out", str(run)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = run / "iter_00" / "cand_00" / "result.json"
    deadline = time.time() + 300
    while not first.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.1)
    assert first.exists(), "the first candidate never finished"
    filler = _fill(small_disk)  # while the second candidate trains
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == 2
    assert "disk is full" in _one_line_error(err, run)
    _intact(run)
    finished = _finished(run)
    assert first in finished

    filler.unlink()
    done = subprocess.run([sys.executable, "-m", "rewardsmith", "solve", "--resume", str(run)], cwd=ROOT,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert all(p.stat().st_mtime_ns == t for p, t in finished.items())  # nothing finished was redone
    assert _candidates(run) == [(0, 0), (0, 1), (1, 0), (1, 1)]
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "done" and not any("space" in (c["reason"] or "") for c in summary["candidates"])
    _intact(run)


DOCKERD_PIDFILE = Path("/run/rewardsmith-dockerd.pid")  # written by scripts/docker-up.sh


def _our_containers() -> list[str]:
    done = subprocess.run(["docker", "ps", "-aq", "--filter", "label=rewardsmith.job"], capture_output=True,
                          text=True, timeout=60)
    return done.stdout.split()


@pytest.fixture
def our_docker_engine():
    """The Docker engine `make test` started, restarted after the test stops it."""
    reason = sandbox_unavailable("docker")
    if reason is not None:
        pytest.skip(f"docker sandbox not available: {reason}")
    if not DOCKERD_PIDFILE.exists():
        pytest.skip("the Docker engine was not started by scripts/docker-up.sh; not stopping someone else's")
    pid = int(DOCKERD_PIDFILE.read_text())
    yield pid
    deadline = time.time() + 120
    while Path(f"/proc/{pid}").exists() and time.time() < deadline:  # let the old engine finish stopping
        time.sleep(0.2)
    subprocess.run(["bash", "scripts/docker-up.sh", sys.executable], cwd=ROOT, check=True, timeout=600,
                   capture_output=True)
    for container in _our_containers():  # killed with the engine, left as "exited"
        subprocess.run(["docker", "rm", "-f", container], capture_output=True, timeout=60)


@pytest.mark.docker
def test_docker_engine_stopping_mid_run_stops_the_solve(tmp_path, our_docker_engine):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "rewardsmith", "solve", "tasks/cartpole.yaml", "--iterations", "1", "--samples", "2",
           "--total-timesteps", "2000000", "--set", "train.early_stop=false", "--sandbox", "docker",
           "--out", str(run)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not list(run.glob("iter_00/cand_*/train.log")):
        if list(run.glob("iter_00/cand_*/work")) and _our_containers():
            break  # training runs in its containers
        time.sleep(0.5)
    assert proc.poll() is None, proc.stderr.read()
    time.sleep(3)
    os.kill(our_docker_engine, signal.SIGTERM)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 2
    assert "Docker engine stopped answering" in _one_line_error(err, run)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "stopped" and "Docker" in summary["stopped_reason"]
    assert summary["candidates"] == []  # not recorded as failures of the rewards: redone on --resume
    _intact(run)
