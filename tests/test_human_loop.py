"""A person in the loop, end to end: solve stops for a ranking, `rewardsmith rank` takes it in a real
terminal (tmux, 160x48), and `solve --resume` continues with it. Also the synthetic person."""

import json
import shlex
import shutil
import sys

import pytest
from conftest import ROOT, run_cli
from terminals import Tmux

FAST = ["--samples", "3", "--total-timesteps", "4096", "--sandbox", "process"]


@pytest.mark.skipif(shutil.which("tmux") is None, reason="needs tmux (scripts/system-deps.sh installs it)")
def test_human_feedback_stops_then_ranking_in_a_terminal_then_resume(tmp_path, cartpole_yaml):
    out = tmp_path / "run"
    proc = run_cli("solve", str(cartpole_yaml), "--feedback", "human", "--iterations", "2", *FAST, "--out", str(out))
    # no terminal here: the run stops cleanly and says what to do
    assert proc.returncode == 3, proc.stderr
    assert f"rewardsmith rank {out}" in proc.stderr and f"rewardsmith solve --resume {out}" in proc.stderr
    assert "Traceback" not in proc.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "stopped" and summary["iterations_done"] == 0
    results = [json.loads(p.read_text()) for p in sorted(out.glob("iter_00/cand_*/result.json"))]
    assert [r["status"] for r in results] == ["ok", "ok", "ok"]
    for r in results:  # a video and the per-step reward components for every trained candidate
        folder = out / "iter_00" / f"cand_{r['index']:02d}"
        assert (folder / "rollout.mp4").stat().st_size > 0 and (folder / "rollout.gif").stat().st_size > 0
        trace = json.loads((folder / "rollout.json").read_text())
        assert set(trace["components"]) == set(r["train"]["checkpoints"][-1]["components"])

    command = f"cd {shlex.quote(str(ROOT))} && {shlex.quote(sys.executable)} -m rewardsmith rank {shlex.quote(str(out))}" \
              "; echo RANK-EXIT=$?; sleep 60"
    tmux = Tmux(command)
    try:
        screen = tmux.wait_for("status", "fitness", "iteration 1")
        for r in results:  # every candidate is listed with its fitness
            assert f"{r['fitness']:.3f}" in screen
        tmux.keys("b")
        tmux.wait_for("★ best")
        tmux.keys("Down", "Down", "w")
        tmux.wait_for("✗ worst", "best: 0 · worst: 2")
        tmux.keys("s")
        screen = tmux.wait_for("RANK-EXIT=0")
        assert "saved the ranking of iteration 1: best 0, worst 2" in screen
    finally:
        tmux.close()
    ranking = json.loads((out / "rankings.jsonl").read_text().splitlines()[-1])
    assert (ranking["iteration"], ranking["best"], ranking["worst"]) == (0, 0, 2) and ranking["time"]

    # resume: the saved ranking becomes iteration 1's feedback; iteration 2 waits for the next one
    proc = run_cli("solve", "--resume", str(out), "--sandbox", "process")
    assert proc.returncode == 3, proc.stderr
    feedback = json.loads((out / "iter_00" / "feedback.json").read_text())
    assert (feedback["kind"], feedback["best"], feedback["worst"]) == ("human", 0, 2)
    refined = json.loads((out / "iter_01" / "proposals.json").read_text())
    assert refined[0]["origin"]["notes"][0] == "refined from iteration 0 candidate 0"
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "stopped" and summary["iterations_done"] == 1
    assert "iteration 2 is waiting" in proc.stderr


def test_rank_refuses_without_a_terminal_or_candidates(tmp_path):
    proc = run_cli("rank", str(tmp_path))
    assert proc.returncode == 2 and "not a rewardsmith run directory" in proc.stderr
    from fake_run import make_run

    run = make_run(tmp_path / "run")
    proc = run_cli("rank", str(run.path))
    assert proc.returncode == 2 and "needs an interactive terminal" in proc.stderr and "Traceback" not in proc.stderr


def test_synthetic_preferences_steer_the_search_to_a_better_reward(tmp_path, cartpole_yaml):
    """3k training steps are too few to solve CartPole, but enough for the reward to matter: each
    round refines the stand-in person's pick (and varies it), and the best candidate improves."""
    out = tmp_path / "run"
    proc = run_cli("solve", str(cartpole_yaml), "--feedback", "synthetic", "--feedback-noise", "0.05",
                   "--iterations", "3", "--samples", "2", "--total-timesteps", "3072", "--sandbox", "process",
                   "--out", str(out))
    assert proc.returncode == 0, proc.stderr
    feedback = [json.loads((out / f"iter_{i:02d}" / "feedback.json").read_text()) for i in range(3)]
    assert [f["kind"] for f in feedback] == ["synthetic"] * 3
    for i in (1, 2):  # each round starts from the candidate the person picked in the round before
        refined = json.loads((out / f"iter_{i:02d}" / "proposals.json").read_text())[0]
        assert refined["origin"]["notes"][0] == f"refined from iteration {i - 1} candidate {feedback[i - 1]['best']}"
    fitness = [[f for p in sorted(out.glob(f"iter_{i:02d}/cand_*/result.json"))
                if (f := json.loads(p.read_text())["fitness"]) is not None] for i in range(3)]
    assert max(fitness[1] + fitness[2]) > max(fitness[0])
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "done" and summary["best"]["iteration"] >= 1
    for folder in out.glob("iter_*/cand_*"):
        assert (folder / "rollout.mp4").is_file() and (folder / "rollout.gif").is_file(), folder
