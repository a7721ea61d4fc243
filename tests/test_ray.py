"""The ray executor on real Ray clusters.

One multi-node cluster for the module, started on this machine as an operator would start one on
several: a head (no CPUs: it only coordinates) and two worker nodes of one CPU each, each node
with its own ``--temp-dir`` and its own work folder (``TMPDIR``), so a file a node never sent
back is missing on the host. ``solve --ray-address`` joins it; candidates spread over both
workers; a worker is killed (SIGKILL of its whole process group: a machine going down) while it
trains a candidate. Without an address ``solve`` starts and ends a cluster of its own, whatever
Ray's address file says. Every ``ray start`` is stopped at the end, also on failure, and no
process of any node is left.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import pytest
from conftest import ROOT, command_lines, run_cli

try:
    import ray  # noqa: F401
except ImportError:
    if os.environ.get("CI"):
        raise  # in CI a missing part fails
    pytest.skip("the ray extra is not installed", allow_module_level=True)

from rewardsmith.runners.executors import artifacts
from rewardsmith.runners.executors.artifacts import Artifacts, pack, unpack
from rewardsmith.runners.executors.ray import can_run

RAY_BIN = str(Path(sys.executable).parent / "ray")
# Throwaway clusters on loopback: no token (Ray's default token lives in ~/.ray, shared with
# whatever else runs Ray on this machine).
RAY_ENV = {**os.environ, "RAY_AUTH_MODE": "disabled"}
NODE_OPTIONS = ["--num-gpus=0", "--disable-usage-stats", "--object-store-memory=100000000",
                "--node-ip-address=127.0.0.1"]
RAN_ON = re.compile(r"ran on Ray node \S+ \(node id (\w+)\)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_for(predicate, timeout: float, what: str, poll: float = 0.2):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(poll)
    pytest.fail(f"timed out after {timeout:g} s waiting for {what}")


def _end_with_this_process() -> None:
    """In the child: SIGTERM when the test process dies, even by SIGKILL (no node outlives it)."""
    import ctypes

    ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # 1 = PR_SET_PDEATHSIG


class Node:
    """One ``ray start --block`` in its own session; stopping it stops the node's processes."""

    def __init__(self, name: str, root: Path, args: list[str]):
        self.name, self.root, self.args = name, root, args
        self.tmp = root / "tmp"      # the node's work folder: TMPDIR of its processes
        self.log = root / "node.log"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        self.tmp.mkdir(parents=True, exist_ok=True)
        with open(self.log, "w") as out:
            self.proc = subprocess.Popen([RAY_BIN, "start", "--block", f"--temp-dir={self.root / 'ray'}", *self.args,
                                          *NODE_OPTIONS], stdout=out, stderr=subprocess.STDOUT,
                                         env={**RAY_ENV, "TMPDIR": str(self.tmp)}, start_new_session=True,
                                         preexec_fn=_end_with_this_process)

    def wait_started(self, timeout: float = 120) -> None:
        def started() -> bool:
            assert self.proc is not None
            if self.proc.poll() is not None:
                pytest.fail(f"ray start ({self.name}) failed: {self.log.read_text()[-2000:]}")
            return "Ray runtime started" in self.log.read_text()

        _wait_for(started, timeout, f"the {self.name} node to start", poll=0.5)

    def processes(self) -> list[str]:
        return command_lines(str(self.root))

    def kill(self) -> None:
        """The machine goes down: every process of the node at once, no draining."""
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        self.proc.wait(timeout=30)

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def terminate(self) -> None:
        """``ray start --block`` ends its node on SIGTERM (after letting running tasks finish)."""
        if self.alive():
            assert self.proc is not None
            self.proc.terminate()

    def stop(self) -> None:
        self.terminate()
        if self.proc is None:
            return
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            pass
        self.kill()  # whatever of its group is left

    def job_folders(self) -> list[Path]:
        return sorted(self.tmp.glob("rewardsmith-ray-*"))


class Cluster:
    """A head without CPUs and two one-CPU worker nodes, all on this machine."""

    def __init__(self, root: Path):
        self.root = root
        self.port = _free_port()
        self.address = f"127.0.0.1:{self.port}"
        # the head's temp dir is RAY_TMPDIR/ray: `--ray-address auto` with RAY_TMPDIR finds this
        # cluster through the address file `ray start --head` writes there
        self.head = Node("head", root / "head", ["--head", f"--port={self.port}", "--num-cpus=0",
                                                  "--include-dashboard=false"])
        self.workers = [Node(f"worker{i}", root / f"w{i}", [f"--address={self.address}", "--num-cpus=1"])
                        for i in (1, 2)]

    @property
    def env(self) -> dict[str, str]:
        return {**RAY_ENV, "RAY_TMPDIR": str(self.root / "head")}

    def start(self) -> None:
        """Start the nodes (the workers wait for the head themselves) and return: other set-up
        goes on while a thread waits for them; :meth:`ready` waits for that thread. (The nodes
        are started here, in the main thread: PR_SET_PDEATHSIG fires when the starting thread ends.)"""
        for node in [self.head, *self.workers]:
            node.start()

        def wait() -> None:
            try:
                for node in [self.head, *self.workers]:
                    node.wait_started()
            except BaseException as exc:  # noqa: BLE001 - raised again by ready()
                self.failed = exc

        self.failed: BaseException | None = None
        self.starting = threading.Thread(target=wait)
        self.starting.start()

    def revive(self, worker: Node) -> None:
        """Start a worker again; the next test waits for it (:meth:`ready`)."""
        worker.stop()
        worker.start()

    def ready(self) -> Cluster:
        """Both workers up: one a test killed is started again."""
        self.starting.join()
        if self.failed is not None:
            raise self.failed
        for worker in self.workers:
            if not worker.alive():
                self.revive(worker)
        for worker in self.workers:
            worker.wait_started()
        return self

    def stop(self) -> None:
        self.starting.join()
        for worker in self.workers:
            worker.terminate()
        for node in [*self.workers, self.head]:
            node.stop()


def _short_tmp(prefix: str) -> Path:
    # Ray's socket paths live under its temp dir and must stay under the 107-character limit
    return Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))


@pytest.fixture(scope="module")
def ray_nodes():
    import shutil

    cluster = Cluster(_short_tmp("rs-ray-"))
    try:
        cluster.start()
        yield cluster
    finally:
        cluster.stop()
        left = _wait_for_gone(lambda: command_lines(str(cluster.root)))
        shutil.rmtree(cluster.root, ignore_errors=True)
        assert left == [], f"processes of the test cluster were left running: {left}"


@pytest.fixture
def cluster(ray_nodes: Cluster) -> Cluster:
    """The module's cluster with both workers up (one an earlier test killed is started again)."""
    return ray_nodes.ready()


def _wait_for_gone(processes, timeout: float = 30) -> list[str]:
    deadline = time.time() + timeout
    while (left := processes()) and time.time() < deadline:
        time.sleep(0.5)
    return left


def sandbox_for_tests() -> str:
    from rewardsmith.errors import SandboxUnavailable
    from rewardsmith.runners.sandboxes import make_sandbox

    try:
        return make_sandbox("bwrap").name
    except SandboxUnavailable:
        if os.environ.get("CI"):
            raise
        return "process"


SMALL = ["--iterations", "1", "--total-timesteps", "4096"]
SECRET = "sk-ray-secret"


def _candidate_files(run: Path) -> dict[str, set[str]]:
    return {f"{c.parent.name}/{c.name}": {p.relative_to(c).as_posix() for p in c.rglob("*")}
            for c in sorted(run.glob("iter_*/cand_*"))}


@pytest.fixture(scope="module")
def local_files(tmp_path_factory) -> set[str]:
    """What a candidate's folder holds after a run with the local executor (the reference)."""
    out = tmp_path_factory.mktemp("local") / "run"
    proc = run_cli("solve", str(ROOT / "tasks" / "cartpole.yaml"), "--sandbox", sandbox_for_tests(), *SMALL,
                   "--samples", "1", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    files = _candidate_files(out)["iter_00/cand_00"]
    assert {"policy.pt", "train.log", "eval.log", "rollout.json", "rollout.mp4", "rollout.gif"} <= files, files
    return files


def _solve(out: Path, *args: str) -> list[str]:
    """A one-candidate solve on the Ray executor, to start with Popen."""
    return [sys.executable, "-m", "rewardsmith", "solve", str(ROOT / "tasks" / "cartpole.yaml"), "--executor", "ray",
            "--sandbox", sandbox_for_tests(), "--iterations", "1", "--samples", "1", "--out", str(out), *args]


# ------------------------------------------------------------------------------ multi-node runs

def test_candidates_spread_over_the_nodes_and_bring_back_every_file(tmp_path, ray_nodes, local_files, cluster):
    # (ray_nodes first: the cluster starts while the local reference run trains)
    out = tmp_path / "run"
    proc = run_cli("solve", str(ROOT / "tasks" / "cartpole.yaml"), "--executor", "ray", "--ray-address", "auto",
                   "--sandbox", sandbox_for_tests(), *SMALL, "--samples", "2", "--out", str(out),
                   env={**cluster.env, "OPENAI_API_KEY": SECRET})
    assert proc.returncode == 0, proc.stderr[-3000:]
    # it says which cluster it joined and what it found there, before training
    said = " ".join(proc.stderr.split())
    assert re.search(rf"Ray: joined the Ray cluster at [\w.]+:{cluster.port} \(session_[\w-]+\): 3 nodes, 2 CPUs, "
                     r"0 GPUs .*iteration 1/1", said), said
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "done" and [c["status"] for c in summary["candidates"]] == ["ok", "ok"], summary

    files = _candidate_files(out)
    node_ids = set()
    for name, present in files.items():
        # the same files as a local run's candidate (plus what the host writes anyway)
        assert present == local_files, (name, present ^ local_files)
        cand = out / name
        assert (cand / "rollout.mp4").stat().st_size > 1000 and (cand / "rollout.gif").stat().st_size > 1000
        trace = json.loads((cand / "rollout.json").read_text())
        assert trace["steps"] > 0 and len(trace["reward"]) == trace["steps"]
        node_ids |= set(RAN_ON.findall((cand / "train.log").read_text()))
    assert len(node_ids) == 2, node_ids  # both workers trained (the head has no CPUs)
    for worker in cluster.workers:
        assert worker.job_folders() == []  # the nodes' work folders are cleaned up
    everything = "".join(p.read_text(errors="replace") for p in out.rglob("*") if p.is_file())
    assert SECRET not in everything


def _training(cluster: Cluster, solve: subprocess.Popen) -> tuple[Node, Path]:
    """The worker whose sandbox trains the candidate of ``solve``, and its folder there, once it does."""
    # a node killed by an earlier test left its candidate's folder behind (nothing ran to remove it)
    earlier = {folder for w in cluster.workers for folder in w.job_folders()}

    def started():
        if solve.poll() is not None:
            pytest.fail(f"solve ended before a node trained: {solve.communicate()[1][-3000:]}")
        return next(((w, folder) for w in cluster.workers for folder in w.job_folders()
                     if folder not in earlier and (folder / "work" / "job.json").is_file()), None)

    return _wait_for(started, 180, "a worker node to start training")


def _kill_the_worker_training(cluster: Cluster, solve: subprocess.Popen) -> Node:
    """Wait until a worker's sandbox trains the candidate, then kill that worker's node."""
    worker, _ = _training(cluster, solve)
    time.sleep(2)  # the sandbox is up and training
    worker.kill()
    # the machine is gone: nothing of it survives, sandboxes included
    assert _wait_for_gone(worker.processes) == []
    return worker


def test_a_worker_node_lost_mid_candidate_is_retried_on_another(tmp_path, cluster):
    out = tmp_path / "run"
    solve = subprocess.Popen(
        _solve(out, "--ray-address", cluster.address, "--total-timesteps", "8000", "--set", "train.early_stop=false"),
        env=cluster.env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        killed = _kill_the_worker_training(cluster, solve)
        _, stderr = solve.communicate(timeout=300)
    finally:
        if solve.poll() is None:
            solve.kill()
    cluster.revive(killed)  # up again while this test checks (the next one waits for it)
    assert solve.returncode == 0, stderr[-3000:]
    result = json.loads((out / "iter_00" / "cand_00" / "result.json").read_text())
    assert result["status"] == "ok" and result["fitness"] is not None, result
    assert "started again on node" in " ".join(stderr.split()), stderr[-3000:]
    survivor = next(w for w in cluster.workers if w is not killed)
    assert survivor.job_folders() == []
    assert len(set(RAN_ON.findall((out / "iter_00" / "cand_00" / "train.log").read_text()))) == 1


def test_a_lost_node_with_no_retries_left_stops_the_run_for_resume(tmp_path, cluster):
    out = tmp_path / "run"
    env = {**cluster.env, "REWARDSMITH_RAY_RETRIES": "0"}
    solve = subprocess.Popen(_solve(out, "--ray-address", cluster.address, "--total-timesteps", "8000",
                                    "--set", "train.early_stop=false"),
                             env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        killed = _kill_the_worker_training(cluster, solve)
        _, stderr = solve.communicate(timeout=300)
    finally:
        if solve.poll() is None:
            solve.kill()
    cluster.revive(killed)  # up again while this test checks (the resumed run may use either worker)
    # an infrastructure fault: one line, exit 2, the run kept and resumable, nothing recorded
    assert solve.returncode == 2, stderr[-3000:]
    line = stderr.strip().splitlines()[-1]
    assert line.startswith("error: the Ray cluster lost the candidate in iter_00/cand_00") and "--resume" in line, line
    assert "Traceback" not in stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "stopped" and summary["candidates"] == [], summary
    assert not (out / "iter_00" / "cand_00" / "result.json").exists()

    proc = run_cli("solve", "--resume", str(out), "--total-timesteps", "4096", env=cluster.env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "done" and [c["status"] for c in summary["candidates"]] == ["ok"], summary


def test_ctrl_c_ends_the_candidates_on_their_nodes(tmp_path, cluster):
    out = tmp_path / "run"
    solve = subprocess.Popen(_solve(out, "--ray-address", cluster.address, "--total-timesteps", "30000",
                                    "--set", "train.early_stop=false"),
                             env=cluster.env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        worker, folder = _training(cluster, solve)
        time.sleep(1)
        solve.send_signal(signal.SIGINT)
        _, stderr = solve.communicate(timeout=120)
    finally:
        if solve.poll() is None:
            solve.kill()
    assert solve.returncode == 130, stderr[-3000:]
    assert json.loads((out / "summary.json").read_text())["status"] == "stopped"
    # the node ended the candidate's sandboxes and removed its folder
    assert _wait_for_gone(lambda: command_lines(str(worker.tmp)), timeout=10) == []
    assert not folder.exists()


def test_a_node_that_cannot_run_candidates_stops_the_run(tmp_path, cluster, monkeypatch):
    """Every node must run the host's code and have the host's sandbox: a node that does not is a
    fault of the cluster, not of the candidate."""
    from dataclasses import replace
    from types import SimpleNamespace

    import ray

    from rewardsmith.errors import InfrastructureError, OptionError
    from rewardsmith.runners.executors import ray as ray_executor
    from rewardsmith.runners.jobs import CandidateJob
    from rewardsmith.runners.sandboxes import Limits, make_sandbox
    from rewardsmith.task import load_task

    monkeypatch.setenv("RAY_AUTH_MODE", "disabled")
    messages: list[str] = []
    executor = ray_executor.RayExecutor(make_sandbox(sandbox_for_tests()), address=cluster.address,
                                        notify=messages.append)
    try:
        # how many nodes: 3, or 4 while a node an earlier test restarted is still listed
        assert re.search(r"joined the Ray cluster at .*: \d+ nodes, \d+ CPUs, 0 GPUs", messages[0]), messages
        monkeypatch.setattr(ray_executor, "code_hash", lambda: "0123456789abcdef")  # what the host sends
        job = CandidateJob(load_task(ROOT / "tasks" / "cartpole.yaml"), "", tmp_path / "cand", Limits())
        with pytest.raises(InfrastructureError, match=r"runs other rewardsmith code .* than the host \(0123456789abcdef\)"):
            list(executor.run([job]))
        assert not (tmp_path / "cand").exists()  # nothing recorded for the candidate
        monkeypatch.undo()
        executor.sandbox = SimpleNamespace(name="nosuch")  # a backend the nodes cannot make
        with pytest.raises(InfrastructureError, match=r"^Ray node \S+ cannot run candidates: .*nosuch"):
            list(executor.run([job]))
        with pytest.raises(OptionError, match="the Ray cluster has no GPUs"):
            list(executor.run([replace(job, device="cuda")]))
    finally:
        executor.close()
    assert not ray.is_initialized()


# ------------------------------------------------------------------------------- local clusters

def test_without_an_address_a_run_starts_its_own_cluster_despite_a_stale_address_file(tmp_path, local_files):
    """An earlier `ray start` left its address file; the cluster behind it is gone."""
    import shutil

    ray_tmp = _short_tmp("rs-stale-")
    try:
        (ray_tmp / "ray").mkdir()
        (ray_tmp / "ray" / "ray_current_cluster").write_text(f"127.0.0.1:{_free_port()}")
        out = tmp_path / "run"
        proc = run_cli("solve", str(ROOT / "tasks" / "cartpole.yaml"), "--executor", "ray", "--sandbox",
                       sandbox_for_tests(), *SMALL, "--samples", "1", "--out", str(out),
                       env={**RAY_ENV, "RAY_TMPDIR": str(ray_tmp)})
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert "started a local Ray cluster for this run: 1 node" in " ".join(proc.stderr.split())
        assert json.loads((out / "summary.json").read_text())["candidates"][0]["status"] == "ok"
        assert _candidate_files(out)["iter_00/cand_00"] == local_files
        # ... and ended it with the run
        assert _wait_for_gone(lambda: command_lines(str(ray_tmp))) == []
    finally:
        shutil.rmtree(ray_tmp, ignore_errors=True)


def test_unreachable_ray_cluster_is_a_user_error(tmp_path, cartpole_yaml):
    proc = run_cli("solve", str(cartpole_yaml), "--executor", "ray", "--ray-address", f"127.0.0.1:{_free_port()}",
                   "--out", str(tmp_path / "run"), env=RAY_ENV, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().startswith("error: no Ray cluster answers") and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


# ------------------------------------------------------------------- bringing the files back

def test_pack_reads_regular_files_within_their_caps(tmp_path, monkeypatch):
    monkeypatch.setattr(artifacts, "MAX_OTHER_BYTES", 10)
    (tmp_path / "train.log").write_text("trained\n")
    (tmp_path / "episodes").mkdir()
    (tmp_path / "episodes" / "0.bin").write_bytes(b"12345")
    (tmp_path / "big.bin").write_bytes(b"x" * 11)
    (tmp_path / "link").symlink_to("/etc/passwd")
    (tmp_path / "linked_dir").symlink_to("/etc")
    os.mkfifo(tmp_path / "fifo")
    packed = pack(tmp_path)
    assert packed.files == {"train.log": b"trained\n", "episodes/0.bin": b"12345"}
    assert sorted(packed.left_out) == ["big.bin: 11 bytes, more than the 10 allowed", "fifo: not a regular file",
                                       "link: not a regular file", "linked_dir: not a regular file"]


def test_unpack_keeps_files_inside_the_folder_and_says_what_it_left_out(tmp_path):
    folder = tmp_path / "cand"
    folder.mkdir()
    (folder / "train.log").write_text("host\n")
    good_trace = {"steps": 1, "fps": 30, "frame_steps": [0], "reward": [1.0], "components": {}, "variables": {},
                  "action": [[0.0]], "terminated": False, "episode_return": 1.0}
    left = unpack(Artifacts({"policy.pt": b"weights", "episodes/0.bin": b"e", "../escape": b"x", "/abs": b"x",
                             "rollout.json": b'{"steps": "many"}', "eval.log": b"e" * (artifacts.cap("eval.log") + 1)},
                            ("big.bin: too big",)), folder, source="Ray node 10.0.0.7")
    assert (folder / "policy.pt").read_bytes() == b"weights" and (folder / "episodes" / "0.bin").read_bytes() == b"e"
    assert not (tmp_path / "escape").exists() and not Path("/abs").exists()
    assert not (folder / "rollout.json").exists() and not (folder / "eval.log").exists()
    assert len(left) == 5
    log = (folder / "train.log").read_text()
    assert log.startswith("host\n") and log.count("not brought back from Ray node 10.0.0.7: ") == 5
    assert "'rollout.json': not a valid episode trace" in log and "big.bin: too big" in log
    assert unpack(Artifacts({"rollout.json": json.dumps(good_trace).encode()}), folder, "node") == []
    assert (folder / "rollout.json").is_file()


@pytest.mark.parametrize(("cpus", "gpus", "fits"), [(1, 0, True), (2, 0, False), (1, 0.5, False)])
def test_can_run_needs_one_live_node_with_the_whole_request(cpus, gpus, fits):
    nodes = [{"Resources": {"CPU": 1.0}}, {"Resources": {"object_store_memory": 1.0}}]
    assert can_run(nodes, cpus, gpus) is fits
