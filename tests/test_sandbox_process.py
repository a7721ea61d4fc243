"""The process sandbox: limits, output cap, clean environment, group kill. No isolation."""

import time

from conftest import TASKS

from rewardsmith.runners.jobs import CandidateJob, train_and_evaluate
from rewardsmith.runners.sandboxes.base import Limits, OutputCapture
from rewardsmith.runners.sandboxes.process import ProcessSandbox
from rewardsmith.task import load_task

HEADER = "import torch\nos = torch.serialization.os\n"


def run_reward(tmp_path, body, **limits):
    task = load_task(TASKS / "cartpole.yaml").with_overrides(train={"total_timesteps": 4096})
    code = HEADER + "def compute_reward(pole_angle):\n" + "\n".join("    " + line for line in body.splitlines())
    spec = CandidateJob(task, code, tmp_path / "cand", Limits(**{"timeout_s": 60, "memory_mb": 4096, **limits}), "cpu")
    (tmp_path / "cand").mkdir()
    return train_and_evaluate(spec, ProcessSandbox())


def test_endless_loop_times_out(tmp_path):
    start = time.time()
    out = run_reward(tmp_path, "while True:\n    pass", timeout_s=8)
    assert out.status == "failed" and out.reason.startswith("timeout")
    assert time.time() - start < 20


def test_memory_bomb_is_out_of_memory(tmp_path):
    out = run_reward(tmp_path, "x = torch.ones(4_000_000_000)\nreturn x[:16], {}", memory_mb=1500)
    assert out.status in ("failed", "rejected")
    assert "memory" in out.reason.lower()


def test_segfault_is_a_signal(tmp_path):
    out = run_reward(tmp_path, "os.kill(os.getpid(), 11)\nreturn pole_angle, {}")
    assert out.status == "failed" and "SIGSEGV" in out.reason


def test_output_flood_is_capped(tmp_path):
    # 10 MB of output from the first call only (the reward is called every step)
    body = ("if not os.environ.get('FLOODED'):\n    os.environ['FLOODED'] = '1'\n"
            "    for _ in range(2000):\n        print('x' * 5000)\nreturn pole_angle, {}")
    out = run_reward(tmp_path, body)
    log = (tmp_path / "cand" / "train.log").read_text()
    assert len(log) < 300_000 and "bytes of earlier output dropped" in log
    assert out.status == "ok"


def test_secrets_not_in_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-very-secret")
    out = run_reward(tmp_path, "raise RuntimeError(str(sorted(os.environ)))")
    assert out.status == "rejected"
    assert "OPENAI_API_KEY" not in out.reason and "PATH" in out.reason


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/status") as f:
            return "\nState:\tZ" not in f.read()
    except FileNotFoundError:
        return False


def test_orphans_are_killed(tmp_path):
    pidfile = tmp_path / "child.pid"
    body = (f"if not os.path.exists('{pidfile}'):\n"
            f"    if os.fork() == 0:\n"
            f"        open('{pidfile}', 'w').write(str(os.getpid()))\n"
            f"        os.system('sleep 60')\n"
            f"        os._exit(0)\n"
            "    else:\n"
            "        torch.serialization.os.system('sleep 0.5')\n"
            "return pole_angle, {}")
    out = run_reward(tmp_path, body)
    assert out.status == "ok"
    pid = int(pidfile.read_text())
    deadline = time.time() + 5
    while _alive(pid) and time.time() < deadline:
        time.sleep(0.1)
    assert not _alive(pid)


def test_output_capture_bounds_long_lines():
    seen = []
    cap = OutputCapture(1000, seen.append)
    cap.feed(b"a" * (OutputCapture.MAX_LINE + 10))
    cap.feed(b"\n@@result {}\nend")
    cap.close()
    assert cap.result_line == "{}" and seen[-1] == "end"
    assert len(cap.text()) <= 1000 + 4096
