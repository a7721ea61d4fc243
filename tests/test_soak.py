"""Soak: many candidates in a row through `rewardsmith solve` leave nothing behind.

Each candidate is tiny (one PPO update, short episodes), so what is exercised is the machinery:
three sandboxed jobs per candidate (dry run, training, evaluation) in the safest sandbox that
works here. Afterwards no worker process or container of the run is left, no temporary file
outside the run, no job scratch folder inside it, and the solving process did not grow.

`make test` runs 9 candidates; the full soak of 100 (about 14 minutes on 2 cores, where each
job's start-up, mostly importing torch, costs 3-5 s) is `make soak`.
"""

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
import yaml
from conftest import ROOT, TASKS, command_lines


def _soak_task(folder: Path, iterations: int, samples: int) -> Path:
    task = yaml.safe_load((TASKS / "cartpole.yaml").read_text())
    task["name"] = "soak"
    task["env"].update(num_envs=8, max_episode_steps=50)
    task["fitness"].update(eval_episodes=2)
    task["search"] = {"iterations": iterations, "samples": samples,
                      "duplicate_correlation": None}  # similar rewards are trained too: 100 jobs
    task["train"] = {"total_timesteps": 256, "num_steps": 32, "seed": 0}
    path = folder / "soak.yaml"
    path.write_text(yaml.safe_dump(task))
    return path


def _containers() -> list[str]:
    try:
        done = subprocess.run(["docker", "ps", "-aq", "--filter", "label=rewardsmith.job"], capture_output=True,
                              text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return []
    return done.stdout.split() if done.returncode == 0 else []


def _memory_kb(pid: int) -> int | None:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None
    # a process that has just exited (a zombie) has no VmRSS line
    return next((int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS:")), None)


def _open_files(pid: int) -> int | None:
    try:
        return len(os.listdir(f"/proc/{pid}/fd"))
    except OSError:
        return None


def test_nine_candidates_leave_nothing_behind(tmp_path):
    _soak(tmp_path, iterations=3, samples=3)


@pytest.mark.slow
@pytest.mark.timeout(2400)
def test_hundred_candidates_leave_nothing_behind(tmp_path):
    _soak(tmp_path, iterations=10, samples=10)


def _soak(tmp_path: Path, iterations: int, samples: int) -> None:
    total = iterations * samples
    temp_roots = [Path(tempfile.gettempdir()), Path("/dev/shm")]
    before = {p for root in temp_roots if root.is_dir() for p in root.iterdir()}
    containers_before = set(_containers())
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "rewardsmith", "solve", str(_soak_task(tmp_path, iterations, samples)),
           "--out", str(run)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    trace = []  # (candidates finished, RSS in kB, open files) of the solving process
    try:
        while proc.poll() is None:
            done = len(list(run.glob("iter_*/cand_*/result.json")))
            rss, fds = _memory_kb(proc.pid), _open_files(proc.pid)
            if rss is not None and fds is not None:
                trace.append((done, rss, fds))
            time.sleep(0.5)
        err = proc.stderr.read()
    finally:
        proc.kill()  # should the test time out
        proc.wait()
    assert proc.returncode == 0, err[-3000:]

    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "done"
    statuses = [c["status"] for c in summary["candidates"]]
    assert len(statuses) == total and set(statuses) <= {"ok", "failed"}
    assert statuses.count("ok") >= 0.9 * len(statuses), [c["reason"] for c in summary["candidates"]][:5]

    # nothing left running
    time.sleep(1)
    assert command_lines(str(run)) == []  # workers, bwrap, docker clients
    assert set(_containers()) <= containers_before
    # no temporary file outside the run, no job scratch or half-written file inside it
    after = {p for root in temp_roots if root.is_dir() for p in root.iterdir()}
    new = {p for p in after - before if not p.name.startswith("pytest-of-")}
    assert new == set(), sorted(new)[:10]
    assert not list(run.glob("iter_*/cand_*/work")) and not list(run.glob("iter_*/cand_*/eval"))
    assert not (run / "checks").exists() and not list(run.rglob(".*.tmp"))
    # the solving process did not grow: compare the first iterations (once warm) with the last
    early = [t for t in trace if samples <= t[0] <= 2 * samples]
    late = [t for t in trace if t[0] >= total - samples]
    assert early and late, trace[-3:]
    grown_mb = (max(t[1] for t in late) - max(t[1] for t in early)) / 1024
    assert grown_mb < 40, f"resident memory grew by {grown_mb:.0f} MB"
    assert max(t[2] for t in late) <= max(t[2] for t in early) + 8, "file descriptors leak"
    print(f"soak: {total} candidates in {summary['wall_s']:.0f} s; memory {max(t[1] for t in early) // 1024} -> "
          f"{max(t[1] for t in late) // 1024} MB; open files {max(t[2] for t in early)} -> {max(t[2] for t in late)}")
