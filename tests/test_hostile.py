"""Hostile rewards through the real CLI, in the bwrap and docker sandboxes.

Every file in tests/hostile/ runs as ``rewardsmith train ... --sandbox BACKEND --json`` (on the
default, warm path: each job forked from a warm sandboxed worker, see test_warm.py). For
each: the command ends normally with a JSON result; it ends the way it should (timeout, out of
memory, signal, NaN, blocked network...); no file appears outside its folder; no process it
started survives; no connection reaches the host; no secret (an API key in the command's
environment, a host file outside the job folder) shows up in the output or the run folder; and
no faked fitness is reported. The runs start together in a session fixture (two at a time)
and each test waits for its own.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from conftest import ROOT, TASKS, sandbox_unavailable

from rewardsmith.runners.sandboxes.warm import WARM_NOTE

HOSTILE = sorted((ROOT / "tests" / "hostile").glob("*.py"))
BACKENDS = ("bwrap", "docker")
STEPS = "2048"
TIMEOUT = {"endless_loop": "10"}  # seconds per job (it ends in a timeout however slow the start); the rest 300
MEMORY_MB = "2048"

# (statuses it may end with, words its reason must contain)
EXPECTED = {
    "endless_loop": ({"failed"}, "timeout"),
    "fake_outcome": ({"failed"}, "could not load the policy checkpoint"),
    "fifo_checkpoint": ({"failed"}, "no policy checkpoint"),
    "flood_stdout": ({"ok"}, None),
    "fork_bomb": ({"ok", "failed"}, None),  # the process cap may starve torch of threads
    "kill_parent": ({"failed"}, "SIGKILL"),
    "memory_bomb": ({"failed", "rejected"}, "memory"),
    "nan_reward": ({"failed"}, "NaN"),
    "network": ({"rejected"}, "tried to use the network"),
    "orphans": ({"ok"}, None),
    "patch_worker": ({"ok"}, None),
    "plant_modules": ({"ok"}, None),
    "read_secrets": ({"rejected"}, "leak"),
    "segfault": ({"failed"}, "SIGSEGV"),
    "symlink_checkpoint": ({"failed"}, "no policy checkpoint"),
    "write_outside": ({"ok"}, None),
}


CHEATS = {"fake_outcome", "patch_worker", "plant_modules"}


@dataclass
class Listener:
    """TCP and UDP on 127.0.0.1:port, counting what arrives (nothing should)."""

    tcp: socket.socket = field(default_factory=lambda: socket.socket())
    received: list[str] = field(default_factory=list)

    def __post_init__(self):
        self.tcp.bind(("127.0.0.1", 0))
        self.tcp.listen()
        self.tcp.settimeout(0.2)
        self.port = self.tcp.getsockname()[1]
        self.udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        self.udp.bind(("127.0.0.1", self.port))
        self.udp.settimeout(0.2)
        self.stop = threading.Event()
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while not self.stop.is_set():
            for sock in (self.tcp, self.udp):
                try:
                    if sock is self.tcp:
                        conn, addr = sock.accept()
                        self.received.append(f"tcp from {addr}")
                        conn.close()
                    else:
                        data, addr = sock.recvfrom(100)
                        self.received.append(f"udp {data!r} from {addr}")
                except (TimeoutError, OSError):
                    pass

    def close(self):
        self.stop.set()
        self.tcp.close()
        self.udp.close()


@dataclass
class HostileRun:
    name: str
    backend: str
    token: str
    secret: str
    marker_text: str
    out: Path
    proc: subprocess.CompletedProcess
    received: list[str]
    survivors: list[str]


def processes_with(token: str) -> list[str]:
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            text = cmdline.read_bytes().replace(b"\0", b" ").decode("utf-8", "replace")
        except OSError:
            continue
        if token in text:
            found.append(f"{cmdline.parent.name}: {text[:120]}")
    return found


def small_task(base: Path) -> Path:
    """tasks/cartpole.yaml with short episodes and few evaluation episodes: the same job, faster."""
    import yaml

    path = base / "cartpole-small.yaml"
    if not path.exists():
        task = yaml.safe_load((TASKS / "cartpole.yaml").read_text())
        task["env"]["max_episode_steps"] = 100
        task["fitness"]["eval_episodes"] = 4
        task["train"]["checkpoints"] = 2
        path.write_text(yaml.safe_dump(task))
    return path


def run_hostile(path: Path, backend: str, base: Path) -> HostileRun:
    token = f"hostile{uuid.uuid4().hex[:12]}"
    work = base / f"{path.stem}-{backend}"
    work.mkdir(parents=True)
    listener = Listener()
    reward = work / "reward.py"
    reward.write_text(path.read_text().replace("hostile-token", token).replace("47011", str(listener.port)))
    marker = Path(f"/tmp/{token}-marker")
    marker_text = f"host-file-secret-{token}"
    marker.write_text(marker_text)
    secret = f"sk-hostile-{token}"
    out = work / "out"
    env = {**os.environ, "OPENAI_API_KEY": secret, "ANTHROPIC_API_KEY": secret}
    args = [sys.executable, "-m", "rewardsmith", "train", str(small_task(base)), "--reward", str(reward),
            "--sandbox", backend, "--timeout", TIMEOUT.get(path.stem, "300"), "--memory", MEMORY_MB,
            "--total-timesteps", STEPS, "--json", "--out", str(out)]
    try:
        proc = subprocess.run(args, cwd=ROOT, env=env, capture_output=True, text=True, timeout=600)
        deadline = time.time() + 10  # teardown is asynchronous for a moment
        while processes_with(token) and time.time() < deadline:
            time.sleep(0.2)
        survivors = processes_with(token)
    finally:
        listener.close()
        marker.unlink()
    return HostileRun(path.stem, backend, token, secret, marker_text, out, proc, listener.received, survivors)


@pytest.fixture(scope="session")
def hostile_runs(request, tmp_path_factory) -> dict[tuple[str, str], Future]:
    base = tmp_path_factory.mktemp("hostile")
    pool = ThreadPoolExecutor(max_workers=2)
    selected = {(item.callspec.params["path"], item.callspec.params["backend"]) for item in request.session.items
                if getattr(item, "originalname", None) == "test_hostile_reward_is_contained"}
    usable = {backend: sandbox_unavailable(backend) is None for backend in BACKENDS}
    small_task(base)
    runs = {(path.stem, backend): pool.submit(run_hostile, path, backend, base)
            for path, backend in sorted(selected) if usable[backend]}
    yield runs
    pool.shutdown(wait=True, cancel_futures=True)


def files_under(folder: Path):
    for root, _, names in os.walk(folder):
        for name in names:
            yield Path(root) / name


def read_plain(path: Path) -> bytes:
    if path.is_symlink():
        return os.readlink(path).encode()
    try:
        return path.read_bytes() if path.is_file() else b""
    except OSError:
        return b""


def escape_candidates(token: str) -> list[Path]:
    """Where a hostile reward tries to write files named after its token."""
    folders = [Path("/tmp"), Path("/var/tmp"), Path("/root"), Path("/dev/shm"), Path("/"), ROOT, ROOT / "tests",
               *Path("/home").glob("*"), *(Path(p) for p in sys.path if p and Path(p).is_dir())]
    return [p for folder in folders for p in folder.glob(f"{token}*") if not p.name.endswith("-marker")]


@pytest.mark.parametrize("backend", [pytest.param("bwrap"), pytest.param("docker", marks=pytest.mark.docker)])
@pytest.mark.parametrize("path", HOSTILE, ids=[p.stem for p in HOSTILE])
def test_hostile_reward_is_contained(path: Path, backend: str, hostile_runs):
    reason = sandbox_unavailable(backend)
    if reason is not None:
        pytest.skip(f"{backend} sandbox not available: {reason}")
    run: HostileRun = hostile_runs[(path.stem, backend)].result()
    proc = run.proc
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"status", "fitness", "wall_s", "env_steps"} <= set(line)
    assert proc.returncode == (0 if line["status"] == "ok" else 1), proc.stderr[-2000:]  # 1: rejected or failed

    statuses, words = EXPECTED[run.name]
    assert line["status"] in statuses, line
    if words:
        assert words.lower() in (line["reason"] or "").lower(), line

    # no faked fitness: the cheats claim a perfect 1.0 and success, but reward falling (or train
    # nothing at all), so an honest evaluation scores them well below that
    if run.name in CHEATS:
        assert line["fitness"] is None or (line["fitness"] < 0.9 and not line["success"]), line
    result = json.loads((run.out / "result.json").read_text())
    assert result["sandbox"] == backend and result["fitness"] == line["fitness"]

    # no secret anywhere: output, run folder (including what the job itself wrote)
    texts = [proc.stdout.encode(), proc.stderr.encode(), *(read_plain(p) for p in files_under(run.out))]
    for secret in (run.secret, run.marker_text):
        assert not any(secret.encode() in t for t in texts), f"{secret} leaked"

    # nothing outside its folder, no survivors, no connection to the host
    assert escape_candidates(run.token) == []
    assert not any(run.token in p.read_text() for p in (ROOT / "rewardsmith").rglob("*.py"))
    assert run.survivors == []
    assert run.received == []

    # the evaluation folder holds what the host put there and nothing the reward planted
    eval_dir = run.out / "eval"
    if eval_dir.exists():
        assert {p.name for p in eval_dir.iterdir()} <= {"policy.pt", "job.json", "tmp"}
    assert (run.out / "train.log").stat().st_size < 400_000
    # both jobs ran on the warm path (forked from a warm worker), not in a fresh sandbox (a log
    # that overflowed starts with how much of its start was dropped)
    for log in ("train.log", "eval.log"):
        if (run.out / log).exists():
            first = (run.out / log).read_text().partition("\n")[0]
            assert first.startswith(WARM_NOTE) or "earlier output dropped" in first, f"{log}: the job did not run warm"
