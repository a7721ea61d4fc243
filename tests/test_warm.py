"""Warm workers (runners/sandboxes/warm.py): jobs forked from a zygote that imported torch once,
one job at a time per warm sandbox, and nothing one job does reaches the next.

The main attack: a reward that tries to leave something behind for the next candidate (patched
modules, files wherever it can write, a thread, a detached process, a SysV shared-memory segment,
a POSIX message queue) and to reach the zygote (ptrace, its memory); the next candidate's reward,
run in the very same warm sandbox, looks for all of it.
"""

from __future__ import annotations

import json
import os
import time
import uuid

import pytest
import yaml
from conftest import TASKS, command_lines, sandbox_unavailable

from rewardsmith.runners.jobs import check_reward
from rewardsmith.runners.sandboxes.base import Limits
from rewardsmith.runners.sandboxes.warm import WARM_NOTE
from rewardsmith.task import TaskSpec

LEAVE = r'''
import torch

os = torch.serialization.os
sys = torch.serialization.sys
TOKEN = "TOKEN-VALUE"
done = []


def compute_reward(pole_angle: torch.Tensor):
    if not done:
        done.append(1)
        import ctypes
        import math
        import threading

        math.leaked = TOKEN
        torch.leaked = TOKEN
        sys.modules["leaked_" + TOKEN] = math
        torch.exp = lambda x: x * 0 + 1234.0
        for folder in ("/job", "/job/tmp", "/tmp", "/dev/shm", "/dev", "/", "/opt/rewardsmith",
                       "/opt/rewardsmith/rewardsmith", "/usr", os.path.dirname(os.__file__)):
            try:
                with open(os.path.join(folder, TOKEN), "w") as f:
                    f.write(TOKEN)
                print("WROTE", folder, flush=True)
            except OSError as exc:
                print("BLOCKED", folder, exc, flush=True)
        threading.Thread(target=lambda: __import__("time").sleep(3600), name=TOKEN, daemon=True).start()
        os.system("setsid sh -c 'exec sleep 3600' " + TOKEN + " >/dev/null 2>&1 &")
        libc = ctypes.CDLL(None, use_errno=True)
        print("SHM", libc.shmget(0x5EED17, 4096, 0o1666), flush=True)
        print("MQ", libc.mq_open(("/" + TOKEN).encode(), 0o102, 0o600, None), flush=True)
        print("PTRACE", libc.ptrace(16, os.getppid(), 0, 0), flush=True)
        for name in ("mem", "environ", "fd"):
            try:
                if name == "fd":  # the names of its descriptors may be listed, not what they are
                    [os.readlink(f"/proc/{os.getppid()}/fd/{n}") for n in os.listdir(f"/proc/{os.getppid()}/fd")]
                else:
                    open(f"/proc/{os.getppid()}/{name}", "rb").read(1)
                print("READ zygote", name, flush=True)
            except OSError as exc:
                print("DENIED zygote", name, exc, flush=True)
    upright = torch.exp(-pole_angle.abs())
    return upright, {"upright": upright}
'''

PROBE = r'''
import torch

os = torch.serialization.os
sys = torch.serialization.sys
TOKEN = "TOKEN-VALUE"
done = []


def _leftovers():
    import ctypes
    import json
    import math
    import threading

    found = []
    if hasattr(math, "leaked") or hasattr(torch, "leaked") or any(TOKEN in name for name in sys.modules):
        found.append("a patched module")
    if float(torch.exp(torch.zeros(1))[0]) != 1.0:
        found.append("a patched torch.exp")
    for root, dirs, files in os.walk("/"):
        if root.startswith(("/proc", "/sys")):
            dirs[:] = []
        elif TOKEN in files:
            found.append("file " + os.path.join(root, TOKEN))
    if any(TOKEN in t.name for t in threading.enumerate()):
        found.append("a thread")
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and TOKEN.encode() in open(f"/proc/{entry}/cmdline", "rb").read():
                found.append("process " + entry)
        except OSError:
            pass
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.shmget(0x5EED17, 0, 0) >= 0:
        found.append("a SysV shared-memory segment")
    if libc.mq_open(("/" + TOKEN).encode(), 0o2, 0o600, None) >= 0:
        found.append("a POSIX message queue")
    print("LEFTOVERS " + json.dumps(found), flush=True)


def compute_reward(pole_angle: torch.Tensor):
    if not done:
        done.append(1)
        _leftovers()
    upright = torch.exp(-pole_angle.abs())
    return upright, {"upright": upright}
'''

KILL_PARENT = '''
import torch

os = torch.serialization.os


def compute_reward(pole_angle: torch.Tensor):
    os.kill(os.getppid(), 9)
    return pole_angle, {}
'''

ENDLESS = '''
import torch


def compute_reward(pole_angle: torch.Tensor):
    while True:
        pass
'''

GOOD = '''
import torch


def compute_reward(pole_angle: torch.Tensor):
    upright = torch.exp(-pole_angle.abs())
    return upright, {"upright": upright}
'''

BACKENDS = [pytest.param("bwrap"), pytest.param("docker", marks=pytest.mark.docker)]


@pytest.fixture(scope="module")
def task() -> TaskSpec:
    return TaskSpec.model_validate(yaml.safe_load((TASKS / "cartpole.yaml").read_text()))


def warm_box(backend: str, task: TaskSpec):
    reason = sandbox_unavailable(backend)
    if reason:
        pytest.skip(f"{backend} sandbox not available: {reason}")
    from rewardsmith.runners.sandboxes import make_sandbox
    from rewardsmith.runners.sandboxes.warm import WarmSandbox

    return WarmSandbox(make_sandbox(backend), task.env.model_dump(mode="json"), keep=1)


def only_worker(box):
    assert not box.busy and len(box.idle) == 1, (box.idle, box.busy)
    return box.idle[0]


LIMITS = Limits(timeout_s=120, memory_mb=2048)


@pytest.mark.parametrize("backend", BACKENDS)
def test_the_next_candidate_finds_nothing_left_behind(backend, task, tmp_path):
    box = warm_box(backend, task)
    token = f"leave{uuid.uuid4().hex[:10]}"
    try:
        first = check_reward(task, LEAVE.replace("TOKEN-VALUE", token), tmp_path / "a", box, LIMITS)
        worker = only_worker(box)
        log = (tmp_path / "a" / "check.log").read_text()
        assert first.ok, (first.reason, log)
        assert "WROTE /job\n" in log and "WROTE /job/tmp\n" in log, log
        assert "WROTE" not in log.replace("WROTE /job\n", "").replace("WROTE /job/tmp\n", ""), log
        assert "SHM -1" not in log, log  # it made its segment (and the sweep must remove it)
        assert "MQ -1" in log and "PTRACE -1" in log, log
        assert "READ zygote" not in log and log.count("DENIED zygote") == 3, log
        assert (tmp_path / "a" / token).read_text() == token  # its own folder got its files back
        assert not command_lines(token), "a process of the last job is still running"

        second = check_reward(task, PROBE.replace("TOKEN-VALUE", token), tmp_path / "b", box, LIMITS)
        probe = (tmp_path / "b" / "check.log").read_text()
        assert second.ok, (second.reason, probe)
        assert only_worker(box) is worker and worker.jobs == 2, "not served by the same warm sandbox"
        assert "LEFTOVERS []" in probe, probe
        assert sorted(os.listdir(tmp_path / "b")) == ["check.log", "job.json", "reward.py", "tmp"]
    finally:
        box.close()
    assert not box.folder.exists()


@pytest.mark.parametrize("backend", BACKENDS)
def test_warm_jobs_match_cold_ones_and_start_fast(backend, task, tmp_path):
    box = warm_box(backend, task)
    try:
        warm = [check_reward(task, GOOD, tmp_path / f"w{i}", box, LIMITS) for i in range(2)]
        start = time.perf_counter()
        third = check_reward(task, GOOD, tmp_path / "w2", box, LIMITS)
        warm_s = time.perf_counter() - start
        cold = check_reward(task, GOOD, tmp_path / "cold", box.base, LIMITS)
        assert only_worker(box).jobs == 3
    finally:
        box.close()
    assert all(r.ok for r in (*warm, third, cold))
    assert warm[0].signature == third.signature == cold.signature and third.components == cold.components
    assert warm_s < 1.0, f"a warm dry run took {warm_s:.2f} s"


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_job_that_kills_its_zygote_or_times_out_gets_no_successor_in_that_sandbox(backend, task, tmp_path):
    box = warm_box(backend, task)
    try:
        check_reward(task, GOOD, tmp_path / "warm", box, LIMITS)
        worker = only_worker(box)
        killed = check_reward(task, KILL_PARENT, tmp_path / "kill", box, LIMITS)
        assert not killed.ok and "SIGKILL" in (killed.reason or ""), killed.reason
        assert worker.broken and worker not in box.idle
        slow = check_reward(task, ENDLESS, tmp_path / "slow", box, Limits(timeout_s=8, memory_mb=2048))
        assert not slow.ok and "timeout" in (slow.reason or ""), slow.reason
        after = check_reward(task, GOOD, tmp_path / "after", box, LIMITS)
        assert after.ok, after.reason
    finally:
        box.close()
    assert not command_lines(str(box.folder))


def test_cold_workers_option_is_stored_and_kept_on_resume(task):
    from rewardsmith.api import warm_workers
    from rewardsmith.options import SolveOptions

    stored = SolveOptions.build(cold_workers=True).model_dump(mode="json")
    assert json.loads(json.dumps(stored))["cold_workers"] is True
    assert SolveOptions.stored(stored).merged().cold_workers is True
    assert SolveOptions.stored(stored).merged(cold_workers=False).cold_workers is False

    class Base:  # a backend with warm workers: only asked whether it has them
        warm_start = None

    base = Base()
    assert warm_workers(base, SolveOptions.build(cold_workers=True), task, jobs=2) is base
    assert warm_workers(base, SolveOptions.build(executor="ray"), task, jobs=2) is base


def test_an_iteration_trains_at_once_up_to_two_candidates_per_core(monkeypatch):
    """By default every candidate of an iteration trains at once (up to two per core): on two
    cores three candidates share them, rather than the third training alone beside an idle core."""
    from rewardsmith.runners import executors
    from rewardsmith.runners.executors import local

    for module in (executors, local):
        monkeypatch.setattr(module, "cpu_count", lambda: 2)
    default, two = local.LocalExecutor(None), local.LocalExecutor(None, parallel=2)
    assert [default.at_once(n) for n in (1, 3, 4, 9)] == [1, 3, 4, 4]
    assert [two.at_once(n) for n in (1, 3)] == [1, 2]
    assert default.threads_per_job(3) == 1 and default.threads_per_job(1) == 2 and two.threads_per_job(3) == 1


def test_move_entries_keeps_symlinks_and_drops_fifos(tmp_path):
    from rewardsmith.runners.sandboxes.warm import move_entries

    src, dst = tmp_path / "src", tmp_path / "dst"
    (src / "sub").mkdir(parents=True)
    dst.mkdir()
    (src / "sub" / "f").write_text("x")
    os.symlink("/etc/passwd", src / "link")
    move_entries(src, dst)
    assert not list(src.iterdir())
    assert (dst / "sub" / "f").read_text() == "x" and os.readlink(dst / "link") == "/etc/passwd"


def test_warm_sandbox_is_the_default_for_train(tmp_path):
    if sandbox_unavailable("bwrap"):
        pytest.skip("bwrap not available")
    from conftest import run_cli

    reward = tmp_path / "r.py"
    reward.write_text(GOOD)
    done = run_cli("train", str(TASKS / "cartpole.yaml"), "--reward", str(reward), "--sandbox", "bwrap",
                   "--total-timesteps", "512", "--json", "--out", str(tmp_path / "out"))
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "out" / "run.json").read_text())["options"]["cold_workers"] is False
    for log in ("train.log", "eval.log"):
        assert (tmp_path / "out" / log).read_text().startswith(WARM_NOTE), log


def test_a_solve_keeps_one_warm_worker_per_core_at_most_and_its_candidates_jobs_take_turns(tmp_path):
    """Three candidates train at once on this machine's cores; their jobs run on at most one warm
    worker per core (each more would import torch again), every one of them warm."""
    if sandbox_unavailable("bwrap"):
        pytest.skip("bwrap not available")
    import re

    from conftest import run_cli

    from rewardsmith.runners.executors import cpu_count

    done = run_cli("solve", str(TASKS / "cartpole.yaml"), "--sandbox", "bwrap", "--iterations", "1", "--samples",
                   "3", "--total-timesteps", "1024", "--json", "--out", str(tmp_path / "run"))
    assert done.returncode == 0, done.stderr
    logs = sorted((tmp_path / "run" / "iter_00").glob("cand_*/*.log"))
    assert len(logs) >= 9  # train, eval and score of each of the three
    workers = set()
    for log in logs:
        first = log.read_text().splitlines()[0]
        assert first.startswith(WARM_NOTE), f"{log}: {first}"
        workers.add(int(re.match(r"\[warm worker (\d+)", first).group(1)))
    assert len(workers) <= min(3, cpu_count()), workers


@pytest.mark.docker
def test_a_warm_container_lost_mid_job_is_the_engine_s_fault_only_if_the_engine_is_gone(task, tmp_path):
    import threading

    from rewardsmith.errors import SandboxGone

    box = warm_box("docker", task)
    try:
        check_reward(task, GOOD, tmp_path / "warm", box, LIMITS)
        for name, engine_gone in (("alive", False), ("gone", True)):
            worker = only_worker(box) if name == "alive" else box.idle[0]
            outcome: list = []

            def run(folder=tmp_path / name, outcome=outcome) -> None:
                try:
                    outcome.append(check_reward(task, ENDLESS, folder, box, LIMITS))
                except SandboxGone as exc:
                    outcome.append(exc)

            thread = threading.Thread(target=run)
            thread.start()
            deadline = time.time() + 60
            while not (tmp_path / name).is_symlink() and time.time() < deadline:
                time.sleep(0.05)
            time.sleep(0.5)
            if engine_gone:  # the engine stops answering as its containers end
                def gone():
                    raise ConnectionError("engine gone")

                box.base.client.ping = gone
            worker.sandbox.container.kill()  # not through the host's own kill
            thread.join(timeout=60)
            if engine_gone:
                assert isinstance(outcome[0], SandboxGone), outcome
            else:
                assert not outcome[0].ok and "SIGKILL" in outcome[0].reason, outcome
                while not box.idle:  # a new worker replaces the lost one
                    time.sleep(0.1)
                box.idle[0].wait_ready(120)
    finally:
        box.close()
