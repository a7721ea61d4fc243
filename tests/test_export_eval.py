"""rewardsmith export (a standalone reward module) and rewardsmith eval (multi-seed evaluation)."""

import json
import subprocess
import sys

import gymnasium as gym
import pytest
from conftest import TASKS, run_cli

import rewardsmith as rs
from rewardsmith.runs import RunDir
from rewardsmith.schemas import BestCandidate, Summary
from rewardsmith.task import load_task

REWARD = '''import math

import torch


def compute_reward(cos_theta: torch.Tensor, theta_dot: torch.Tensor, action: torch.Tensor):
    upright = (cos_theta + 1.0) / 2.0
    spin = theta_dot.abs() / 8.0
    return upright - 0.1 * spin, {"upright": upright, "spin": spin}
'''


def _make_run(path, with_policy=True):
    """A run directory as a solve leaves it, with a best candidate (its policy untrained)."""
    from rewardsmith.train.policy import build_policy, save_policy

    task = load_task(TASKS / "pendulum_swingup_gym.yaml").with_overrides(fitness={"eval_episodes": 4})
    run = RunDir.create(path, task, {"model": "builtin"})
    cand = run.candidate_dir(0, 0)
    cand.mkdir(parents=True)
    (cand / "reward.py").write_text(REWARD)
    if with_policy:
        description = task.env.describe()
        save_policy(build_policy(3, description.action, task.train), cand / "policy.pt")
    best = BestCandidate(iteration=0, index=0, fitness=0.5, success=False, reward_file="iter_00/cand_00/reward.py")
    run.write_summary(Summary(task=task.name, status="done", best=best, candidates=[], wall_s=1.0, iterations_done=1))
    return path


def test_export_is_standalone_and_matches_the_wrapped_reward(tmp_path):
    run = _make_run(tmp_path / "run", with_policy=False)
    out = tmp_path / "reward_module.py"
    proc = run_cli("export", str(run), "-o", str(out))
    assert proc.returncode == 0, proc.stderr
    text = out.read_text()
    assert "rewardsmith" not in text.split('"""', 2)[2].replace("found by rewardsmith", "")  # no import of it
    assert "Fitness: mean(cos_theta > 0.95)" in text and "theta_dot (n) [rad/s]" in text

    env = rs.wrap(gym.make("Pendulum-v1"), REWARD)
    env.reset(seed=1)
    action = env.action_space.sample()
    obs, expected, _, _, info = env.step(action)
    probe = (
        "import json, runpy, sys\n"
        f"m = runpy.run_path({str(out)!r})\n"
        f"total, parts = m['reward_from_step']({obs.tolist()!r}, {{}}, {action.tolist()!r})\n"
        "print(json.dumps([total, parts, 'rewardsmith' in sys.modules]))\n"
    )
    done = subprocess.run([sys.executable, "-I", "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    total, parts, imported = json.loads(done.stdout)
    assert not imported
    assert total == pytest.approx(expected, rel=1e-5)
    assert parts == pytest.approx(info["reward_components"], rel=1e-5)
    assert rs.export(run) == text


def test_eval_over_seeds_writes_policy_eval_json(tmp_path):
    run = _make_run(tmp_path / "run")
    assert (run / "iter_00" / "cand_00" / "policy.pt").is_file()
    proc = run_cli("eval", str(run), "--seeds", "2", "--sandbox", "process", "--json")
    assert proc.returncode == 0, (proc.stderr, sorted(str(p.relative_to(run)) for p in run.rglob("*")))
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    stored = json.loads((run / "policy_eval.json").read_text())
    assert stored == report
    assert report["candidate"] == "iter_00/cand_00"
    assert [s["status"] for s in report["seeds"]] == ["ok", "ok"]
    scores = [s["fitness"] for s in report["seeds"]]
    assert len(set(s["seed"] for s in report["seeds"])) == 2 and all(0.0 <= f <= 1.0 for f in scores)
    assert report["mean"] == pytest.approx(sum(scores) / 2) and report["min"] == min(scores)
    assert report["episodes_per_seed"] == 4


def test_eval_and_export_need_a_best_candidate(tmp_path):
    empty = tmp_path / "empty"
    RunDir.create(empty, load_task(TASKS / "pendulum_swingup_gym.yaml"), {})
    for args in (["eval", str(empty)], ["export", str(empty)], ["eval", str(tmp_path / "nope")]):
        proc = run_cli(*args)
        assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
        assert proc.stderr.startswith("error:")
    no_policy = _make_run(tmp_path / "nopolicy", with_policy=False)
    proc = run_cli("eval", str(no_policy), "--sandbox", "process")
    assert proc.returncode == 2 and "policy.pt is missing" in proc.stderr
