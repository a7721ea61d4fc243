"""The ray executor on a real local Ray cluster: one cluster for the session, started with
``ray start --head --block`` and stopped by its pid; ``solve`` connects with --ray-address."""

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import run_cli

ray = pytest.importorskip("ray", reason="the ray extra is not installed")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# A throwaway cluster on loopback: no token (Ray's default token lives in ~/.ray, shared with
# whatever else runs Ray on this machine).
RAY_ENV = {**os.environ, "RAY_AUTH_MODE": "disabled"}


@pytest.fixture(scope="session")
def ray_cluster(tmp_path_factory):
    port = _free_port()
    log = tmp_path_factory.mktemp("ray") / "head.log"
    ray_bin = Path(sys.executable).parent / "ray"
    with open(log, "w") as out:
        head = subprocess.Popen([str(ray_bin), "start", "--head", "--block", f"--port={port}", "--num-cpus=2",
                                 "--num-gpus=0", "--include-dashboard=false", "--disable-usage-stats",
                                 "--object-store-memory=200000000", "--node-ip-address=127.0.0.1"],
                                stdout=out, stderr=subprocess.STDOUT, env=RAY_ENV)
    address = f"127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline and "Ray runtime started" not in log.read_text():
        if head.poll() is not None:
            pytest.fail(f"ray start failed: {log.read_text()[-2000:]}")
        time.sleep(0.5)
    yield address
    head.terminate()  # --block: stopping it stops the cluster it started
    try:
        head.wait(timeout=60)
    except subprocess.TimeoutExpired:
        head.kill()


def sandbox_for_tests() -> str:
    from rewardsmith.errors import SandboxUnavailable
    from rewardsmith.runners.sandboxes import make_sandbox

    try:
        return make_sandbox("bwrap").name
    except SandboxUnavailable:
        return "process"


def test_solve_with_ray_executor(tmp_path, cartpole_yaml, ray_cluster):
    out = tmp_path / "run"
    env = {**RAY_ENV, "OPENAI_API_KEY": "sk-ray-secret"}
    proc = run_cli("solve", str(cartpole_yaml), "--executor", "ray", "--ray-address", ray_cluster,
                   "--sandbox", sandbox_for_tests(), "--iterations", "1", "--samples", "2",
                   "--total-timesteps", "4096", "--out", str(out), env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "done" and len(summary["candidates"]) == 2
    assert all(c["status"] == "ok" and c["fitness"] is not None for c in summary["candidates"]), summary
    for index in (0, 1):
        cand = out / "iter_00" / f"cand_{index:02d}"
        for name in ("policy.pt", "train.log", "eval.log", "result.json"):
            assert (cand / name).is_file(), name  # shipped back from the node's folder
        assert "@@progress" in (cand / "train.log").read_text()
    assert "sk-ray-secret" not in "".join(p.read_text(errors="replace") for p in out.rglob("*") if p.is_file())


def test_unreachable_ray_cluster_is_a_user_error(tmp_path, cartpole_yaml):
    proc = run_cli("solve", str(cartpole_yaml), "--executor", "ray", "--ray-address", f"127.0.0.1:{_free_port()}",
                   "--out", str(tmp_path / "run"), env=RAY_ENV, timeout=300)
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert proc.stderr.strip().startswith("error: no Ray cluster answers") and "Traceback" not in proc.stderr
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_solve_with_ray_starts_a_local_cluster(tmp_path, cartpole_yaml):
    out = tmp_path / "run"
    proc = run_cli("solve", str(cartpole_yaml), "--executor", "ray", "--sandbox", sandbox_for_tests(),
                   "--iterations", "1", "--samples", "1", "--total-timesteps", "4096", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert json.loads((out / "summary.json").read_text())["candidates"][0]["status"] == "ok"


