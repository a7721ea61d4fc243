"""A solve killed with SIGKILL in the middle resumes without redoing finished work."""

import json
import os
import signal
import subprocess
import sys
import time

import yaml
from conftest import ROOT, command_lines


def _workers_of(run_dir) -> list[str]:
    return command_lines("rewardsmith.runners.guest", str(run_dir))


def test_sigkill_then_resume_redoes_nothing(tmp_path, cartpole_yaml):
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "rewardsmith", "solve", str(cartpole_yaml), "--iterations", "2", "--samples", "2",
           "--sandbox", "process", "--out", str(run)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    first = run / "iter_00" / "cand_00" / "result.json"
    deadline = time.time() + 300
    while not first.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert first.exists(), "the first candidate never finished"
    os.kill(proc.pid, signal.SIGKILL)  # a crash: no cleanup, no summary update
    proc.wait()
    # workers of a killed solve die with it
    deadline = time.time() + 15
    while _workers_of(run) and time.time() < deadline:
        time.sleep(0.2)
    assert not _workers_of(run)

    finished = {p: p.stat().st_mtime_ns for p in run.glob("iter_*/cand_*/result.json")}
    # what a kill in the middle of an atomic write leaves (this kill may or may not have hit one)
    (run / ".summary.json.k1ll3d_x.partial.tmp").write_text('{"status": "runn')
    (run / "iter_00" / "cand_00" / ".critic.json.k1ll3d_x.partial.tmp").write_text("")
    done = subprocess.run([sys.executable, "-m", "rewardsmith", "solve", "--resume", str(run)], cwd=ROOT,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr
    assert {p: p.stat().st_mtime_ns for p in finished} == finished  # nothing finished was redone
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "done" and summary["iterations_done"] == 2
    pairs = [(c["iteration"], c["index"]) for c in summary["candidates"]]
    assert pairs == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert summary["best"]["success"] is True
    assert not list(run.rglob(".*.tmp"))  # no half-written files left


def test_ctrl_c_stops_promptly_and_keeps_the_run_resumable(tmp_path, cartpole_yaml):
    run = tmp_path / "run"
    task = yaml.safe_load(cartpole_yaml.read_text())
    task["train"].update(total_timesteps=2_000_000, early_stop=False)  # training that outlasts the test
    long_task = tmp_path / "long.yaml"
    long_task.write_text(yaml.safe_dump(task))
    cmd = [sys.executable, "-m", "rewardsmith", "solve", str(long_task), "--iterations", "1", "--samples", "2",
           "--sandbox", "process", "--out", str(run)]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while not _workers_of(run) and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert _workers_of(run), f"training never started: {proc.poll()=}"
    time.sleep(2)
    proc.send_signal(signal.SIGINT)  # what Ctrl-C sends
    start = time.time()
    _, err = proc.communicate(timeout=60)
    assert time.time() - start < 20  # did not wait for the long training to finish
    assert proc.returncode == 130
    assert f"rewardsmith solve --resume {run}" in err
    assert not _workers_of(run)
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "stopped" and summary["candidates"] == []


def test_resume_cleanup_removes_only_partial_writes_outside_scratch_folders(tmp_path):
    from rewardsmith.runs import RunDir, atomic_write_text

    cand = tmp_path / "iter_00" / "cand_00"
    (cand / "work").mkdir(parents=True)
    atomic_write_text(cand / "result.json", "{}")  # a finished write leaves no temporary file
    leftovers = [tmp_path / ".summary.json.a1b2c3d4.partial.tmp", cand / ".critic.json.zz_9zz9z.partial.tmp"]
    kept = [cand / "work" / ".outcome.json.a1b2c3d4.partial.tmp",  # the sandbox's folder: not ours to judge
            cand / "notes.tmp", cand / ".hidden.tmp", cand / "result.json"]
    for path in leftovers + kept:
        path.write_text("x")
    assert RunDir(tmp_path).remove_partial_writes() == 2
    assert not any(p.exists() for p in leftovers) and all(p.exists() for p in kept)
