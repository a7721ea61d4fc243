"""End to end through the real CLI: solve, train, resume, describe."""

import json
import os
import re

import pytest
from conftest import GOOD_CARTPOLE_REWARD, run_cli


def test_describe_prints_named_variables():
    proc = run_cli("describe", "torch:CartPole")
    assert proc.returncode == 0
    for name in ("cart_pos", "cart_vel", "pole_angle", "pole_vel", "action"):
        assert name in proc.stdout
    bad = run_cli("describe", "torch:Nope")
    assert bad.returncode == 2 and bad.stderr.startswith("error: unknown environment") and "Traceback" not in bad.stderr


def test_solve_cartpole_end_to_end_and_resume(tmp_path, cartpole_yaml):
    out = tmp_path / "run"
    proc = run_cli("solve", str(cartpole_yaml), "--model", "builtin", "--iterations", "1", "--samples", "2",
                   "--sandbox", "process", "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "done"
    assert summary["best"]["success"] is True and summary["best"]["fitness"] >= 0.95
    assert (out / summary["best"]["reward_file"]).read_text().startswith("import")
    assert [(c["iteration"], c["index"]) for c in summary["candidates"]] == [(0, 0), (0, 1)]
    assert all(c["status"] == "ok" for c in summary["candidates"])
    assert summary["wall_s"] > 0
    cand = out / "iter_00" / "cand_00"
    for name in ("reward.py", "critic.json", "result.json", "policy.pt", "train.log"):
        assert (cand / name).is_file(), name
    result = json.loads((cand / "result.json").read_text())
    assert len(result["train"]["checkpoints"]) >= 1
    assert set(result["train"]["checkpoints"][0]["components"]) == {"pole_angle_small", "cart_pos_small"}
    assert "pole_angle_small" in result["analysis"]["text"]
    assert "Best reward" in proc.stdout and "fitness" in proc.stdout

    # resume with one more iteration: the finished candidates are not trained again
    before = {p: p.stat().st_mtime_ns for p in out.glob("iter_00/cand_*/result.json")}
    proc = run_cli("solve", "--resume", str(out), "--iterations", "2", "--sandbox", "process", "--final-seeds", "1")
    assert proc.returncode == 0, proc.stderr
    assert {p: p.stat().st_mtime_ns for p in out.glob("iter_00/cand_*/result.json")} == before
    summary = json.loads((out / "summary.json").read_text())
    pairs = [(c["iteration"], c["index"]) for c in summary["candidates"]]
    assert pairs == [(0, 0), (0, 1), (1, 0), (1, 1)]
    assert summary["iterations_done"] == 2
    refined = json.loads((out / "iter_01" / "proposals.json").read_text())
    assert "refined from iteration 0" in refined[0]["origin"]["notes"][0]
    # the best reward was retrained from scratch with another seed
    final = summary["final"]
    assert final["seeds"] == [1] and final["statuses"] == ["ok"] and final["mean"] == final["fitness"][0] > 0.5
    assert (out / "final" / "seed_1" / "result.json").is_file()
    assert "Retrained with 1 other seeds" in proc.stdout


def test_train_json_last_line(tmp_path, cartpole_yaml):
    reward = tmp_path / "reward.py"
    reward.write_text(GOOD_CARTPOLE_REWARD)
    env = {**os.environ, "OPENAI_API_KEY": "sk-test-secret-123"}
    proc = run_cli("train", str(cartpole_yaml), "--reward", str(reward), "--sandbox", "process",
                   "--total-timesteps", "60000", "--out", str(tmp_path / "out"), "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    assert {"status", "fitness", "wall_s", "env_steps"} <= set(line)
    assert line["status"] == "ok" and line["fitness"] > 0.5 and 0 < line["env_steps"] <= 61440
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    log = result["train"]  # where the training time went: collecting experience, then the updates
    assert log["rollout_s"] > 0 and log["update_s"] > 0 and log["rollout_s"] + log["update_s"] <= log["wall_s"]
    # scored by the clean evaluation job; the episode recorded for the video was encoded
    assert result["eval"]["episodes"] == 16 and (tmp_path / "out" / "rollout.mp4").stat().st_size > 0


def test_train_rejects_broken_reward_without_training(tmp_path, cartpole_yaml):
    reward = tmp_path / "reward.py"
    reward.write_text("def compute_reward(pole_angel):\n    return pole_angel, {}\n")
    proc = run_cli("train", str(cartpole_yaml), "--reward", str(reward), "--sandbox", "process",
                   "--out", str(tmp_path / "out"), "--json")
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    assert line["status"] == "rejected" and "unknown argument 'pole_angel'" in line["reason"]
    assert line["env_steps"] == 0
    assert proc.returncode == 1 and "rejected: critic: unknown argument 'pole_angel'" in proc.stderr


def test_train_missing_reward_file_is_a_user_error(tmp_path, cartpole_yaml):
    proc = run_cli("train", str(cartpole_yaml), "--reward", str(tmp_path / "nope.py"), "--out", str(tmp_path / "o"))
    assert proc.returncode == 2 and "no such reward file" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.parametrize("args, words", [
    (["solve"], "give a task file"),
    (["solve", "tasks/cartpole.yaml", "--model", "builtin", "--sandbox", "nope"], "--sandbox: 'nope' is not one of"),
    (["solve", "tasks/cartpole.yaml", "--samples", "0"], "search.samples"),
    (["solve", "--resume", "/nonexistent/run"], "not a rewardsmith run directory"),
])
def test_user_errors_exit_2(tmp_path, args, words):
    proc = run_cli(*args, "--out", str(tmp_path / "o")) if "--resume" not in args else run_cli(*args)
    assert proc.returncode == 2, proc.stderr
    assert words in proc.stderr and "Traceback" not in proc.stderr
    assert not (tmp_path / "o").exists()


def test_solve_that_trains_nothing_exits_1(tmp_path, cartpole_yaml):
    from rewardsmith.runs import RunDir
    from rewardsmith.schemas import Candidate
    from rewardsmith.task import load_task

    # a run whose proposals are saved already (as after a crash): code the critic rejects
    run = RunDir.create(tmp_path / "run", load_task(cartpole_yaml).with_overrides(search={"iterations": 1}), {})
    broken = ["def compute_reward(pole_angel):\n    return pole_angel, {}\n", "import os\n"]
    run.save_proposals(0, [Candidate(iteration=0, index=i, code=code) for i, code in enumerate(broken)])
    proc = run_cli("solve", "--resume", str(run.path), "--sandbox", "process")
    assert proc.returncode == 1, proc.stderr
    assert "No candidate trained successfully" in proc.stdout
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["best"] is None and {c["status"] for c in summary["candidates"]} == {"rejected"}


def test_a_sandbox_too_small_to_start_is_not_the_rewards_fault(tmp_path, cartpole_yaml):
    # 256 MB of address space is too little to import torch: the dry run dies before any reward code
    proc = run_cli("solve", str(cartpole_yaml), "--memory", "256", "--sandbox", "process", "--iterations", "1",
                   "--out", str(tmp_path / "run"))
    assert proc.returncode == 2, proc.stderr
    # the first job to start is screening's random episodes (evaluate) or, with screening off, the dry run
    assert re.search(r"ran out of memory while the (evaluate|check) job started, before any reward code ran "
                     r"\(limit 256 MB\)", proc.stderr), proc.stderr
    assert "Traceback" not in proc.stderr
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["status"] == "stopped" and summary["candidates"] == []  # no reward was blamed
