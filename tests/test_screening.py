"""Trajectory screening: stored episodes scored by a candidate's reward in its sandbox, judged
against their fitness before training; the ``score`` job; a solve that screens out a reward with
the wrong sign and tells the designer why; a resumed run keeps its episodes."""

import json
import os

import numpy as np
import pytest
from conftest import GOOD_CARTPOLE_REWARD, TASKS, run_cli
from fake_llm_server import FakeLLMServer
from llm_script import CONSTANT, PAYS_FOR_FALLING, PRODUCT, WEIGHTED_SUM, Script, fenced

from rewardsmith.critic.screening import judge, spearman
from rewardsmith.runners.jobs import record_random_episodes, score_rewards
from rewardsmith.runners.sandboxes.base import Limits
from rewardsmith.runners.sandboxes.process import ProcessSandbox
from rewardsmith.schemas import EpisodeMeta
from rewardsmith.task import load_task

TASK = load_task(TASKS / "cartpole.yaml")
LIMITS = Limits(timeout_s=120, memory_mb=4096)


def metas(fitness, lengths=None):
    lengths = lengths or [10] * len(fitness)
    return [EpisodeMeta(source="random", fitness=f, length=n) for f, n in zip(fitness, lengths)]


def test_judge_turns_away_wrong_order_and_constant_rewards_only():
    fitness = [0.02, 0.05, 0.1, 0.3, 0.6, 0.9, 1.0, 1.0]
    lengths = [10, 25, 50, 150, 300, 450, 500, 500]
    episodes = metas(fitness, lengths)
    upright = [n * (0.5 + 0.5 * f) for n, f in zip(lengths, fitness)]  # more per step when upright
    assert judge(upright, episodes, 0.0).passed
    wrong = judge([-r for r in upright], episodes, 0.0)
    assert not wrong.passed and wrong.correlation < -0.9
    assert "run against their task fitness" in wrong.reason and "fitness 1" in wrong.reason
    constant = judge([0.0] * 8, episodes, 0.0)
    assert not constant.passed and "pays the same on every state" in constant.reason
    alive = judge([float(n) for n in lengths], episodes, 0.0)  # +1 a step (CartPole's own): pays for surviving
    assert alive.passed and alive.correlation > 0.9
    hurry = judge([-float(n) for n in lengths], episodes, 0.0)  # -1 a step here pays for falling early
    assert not hurry.passed and "run against their task fitness" in hurry.reason
    fixed_length = judge([200.0] * 8, metas(fitness, [200] * 8), 0.0)  # +1 a step, no episode ends early
    assert not fixed_length.passed and "pays the same on every state" in fixed_length.reason
    noisy = judge([u * (1 + 0.3 * (-1) ** i) for i, u in enumerate(upright)], episodes, 0.0)
    assert noisy.passed  # not clearly wrong
    flat = judge([1.0, 2.0, 3.0, 4.0], metas([0.5] * 4), 0.0)
    assert flat.passed and not flat.judged  # episodes alike in fitness: nothing to judge by
    assert judge([1.0], episodes, 0.0).reason.startswith("screening: the reward's job returned 1 returns")
    assert spearman(np.array([1.0, 2, 3]), np.array([3.0, 2, 1])) == pytest.approx(-1)


def test_score_job_scores_stored_episodes_in_the_sandbox(tmp_path):
    episodes = record_random_episodes(TASK, tmp_path / "random", ProcessSandbox(), LIMITS, "cpu", [1, 8], 8, seed=3)
    assert not isinstance(episodes, str), episodes
    assert len(episodes) == 16 and {m.source for m in episodes.meta} == {"random"}
    assert {m.hold for m in episodes.meta} == {1, 8}
    # CartPole's fitness counts the steps with the pole up: all of an episode's but the one that ended it
    assert all(round(m.fitness * 500) == m.length - 1 for m in episodes.meta)
    report = score_rewards(TASK, GOOD_CARTPOLE_REWARD, episodes.to_bytes(), len(episodes), tmp_path / "score",
                           ProcessSandbox(), LIMITS, "cpu", gamma=0.9)
    assert not isinstance(report, str), report
    v = episodes.variables
    per_step = np.exp(-np.abs(v["pole_angle"]) / 0.2) * np.exp(-np.abs(v["cart_pos"]) / 2.4)
    offsets = episodes.offsets
    sums = [per_step[a:b].sum() for a, b in zip(offsets[:-1], offsets[1:])]
    discounted = [(per_step[a:b] * 0.9 ** np.arange(b - a)).sum() for a, b in zip(offsets[:-1], offsets[1:])]
    assert report.totals == pytest.approx(sums, rel=1e-5)
    assert report.returns == pytest.approx(discounted, rel=1e-5)
    assert report.components == ["upright", "centered"] and report.steps == episodes.steps
    broken = score_rewards(TASK, "def compute_reward(pole_angle):\n    return pole_angle[:, None], {}\n",
                           episodes.to_bytes(), len(episodes), tmp_path / "broken", ProcessSandbox(), LIMITS, "cpu")
    assert isinstance(broken, str) and "shape" in broken


def same_mistake_again(request) -> str:
    """A fix that repeats the candidate's mistake: chosen by what the request quotes, since two
    candidates' fix requests arrive in either order."""
    if "run against their task fitness" in request.last_user:
        return fenced(PAYS_FOR_FALLING)
    return fenced(CONSTANT)


def _env(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    return {**env, "REWARDSMITH_CACHE_DIR": str(tmp_path / "cache"), "OPENAI_API_KEY": "sk-test"}


def test_a_reward_that_pays_for_falling_is_screened_out_and_the_designer_told_why(tmp_path):
    script = Script(designer=[fenced(PRODUCT), fenced(PAYS_FOR_FALLING), fenced(CONSTANT),      # iteration 1
                              fenced(WEIGHTED_SUM), fenced(PAYS_FOR_FALLING), fenced(PRODUCT)],  # iteration 2
                    fix=[same_mistake_again] * 8)  # the designer does not learn
    out = tmp_path / "run"
    with FakeLLMServer(script) as server:
        proc = run_cli("solve", "tasks/cartpole.yaml", "--model", "openai/gpt-4o-mini", "--api-base",
                       server.url + "/v1", "--iterations", "2", "--samples", "3", "--sandbox", "process",
                       "--total-timesteps", "30000", "--out", str(out), env=_env(tmp_path))
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["best"]["success"] is True
    lines = {(c["iteration"], c["index"]): c for c in summary["candidates"]}
    for key in [(0, 1), (0, 2), (1, 1)]:  # the wrong-signed and the constant rewards
        line = lines[key]
        assert line["status"] == "rejected" and line["reason"].startswith("screening: "), line
        folder = out / f"iter_{key[0]:02d}" / f"cand_{key[1]:02d}"
        assert json.loads((folder / "critic.json").read_text())["stage"] == "screen"
        assert not (folder / "train.log").exists() and not (folder / "policy.pt").exists()  # never trained
    assert "run against their task fitness" in lines[(0, 1)]["reason"]
    assert "pays the same on every state" in lines[(0, 2)]["reason"]
    assert lines[(0, 0)]["status"] == "ok" and lines[(1, 0)]["status"] == "ok"
    assert summary["screening"]["screened"] == 3 and summary["screening"]["random_episodes"] > 0
    # iteration 1 is screened on random policies' episodes; iteration 2 also on trained policies'
    index = json.loads((out / "episodes" / "index.json").read_text())
    assert {e["meta"]["source"] for e in index["episodes"]} == {"random", "eval", "train"}

    fixes = [r.last_user for r in script.asked["fix"]]
    assert any("run against their task fitness" in f and "rank correlation -" in f for f in fixes)
    refinement = script.asked["designer"][-1].last_user  # iteration 2's prompt
    assert "candidate 1: rejected: screening: its returns on" in refinement
    assert "a random policy" in refinement  # which episodes it ranked wrongly
    assert "Screening: before training" in refinement


def test_a_resumed_run_reuses_its_stored_episodes(tmp_path):
    out = tmp_path / "run"
    first = run_cli("solve", "tasks/cartpole.yaml", "--iterations", "1", "--samples", "1", "--sandbox", "process",
                    "--total-timesteps", "20000", "--out", str(out))
    assert first.returncode == 0, first.stderr[-2000:]
    index = json.loads((out / "episodes" / "index.json").read_text())
    random = [e for e in index["episodes"] if e["meta"]["source"] == "random"]
    assert index["seeded"] and random and any(e["meta"]["source"] == "eval" for e in index["episodes"])
    stored = {p.name: p.stat().st_mtime_ns for p in (out / "episodes").glob("batch_*.npz")}

    again = run_cli("solve", "--resume", str(out), "--iterations", "2")
    assert again.returncode == 0, again.stderr[-2000:]
    index = json.loads((out / "episodes" / "index.json").read_text())
    assert [e for e in index["episodes"] if e["meta"]["source"] == "random"] == random  # not recorded again
    assert {p: (out / "episodes" / p).stat().st_mtime_ns for p in stored} == stored  # kept as they were
    assert any(e["meta"].get("iteration") == 1 for e in index["episodes"])  # iteration 2's joined them
    before, after = (json.loads((out / f"iter_{i:02d}" / "cand_00" / "critic.json").read_text())["screening"]
                     for i in (0, 1))
    # iteration 2 is screened on iteration 1's trained policy's episodes too, far better than random ones
    assert before["judged"] and after["judged"]
    assert after["best_mean_return"] > 2 * before["best_mean_return"]


# random policies keep the pole up for at most ~60 steps: none of their episodes passes this
UNREACHED_GOAL = "sum(abs(pole_angle) < 0.2095 and abs(cart_pos) < 2.4) / max_episode_steps >= 0.2"


def test_a_goal_random_policies_never_reach_gets_a_probe_training_whose_episodes_screen_the_first_candidates(tmp_path):
    # the random episodes cannot tell rewards apart; the probe (the builtin designer's reward,
    # trained briefly) can
    goal = UNREACHED_GOAL
    out = tmp_path / "run"
    with FakeLLMServer(Script(designer=[fenced(PRODUCT)])) as server:
        proc = run_cli("solve", "tasks/cartpole.yaml", "--model", "openai/gpt-4o-mini", "--api-base",
                       server.url + "/v1", "--iterations", "1", "--samples", "1", "--sandbox", "process",
                       "--set", f"fitness.expression={goal}", "--out", str(out), env=_env(tmp_path))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "a probe training of 20,000 env steps" in proc.stdout + proc.stderr
    index = json.loads((out / "episodes" / "index.json").read_text())
    by_source: dict[str, list[float]] = {}
    for e in index["episodes"]:
        by_source.setdefault(e["meta"]["source"], []).append(e["meta"]["fitness"])
    assert set(by_source["random"]) == {0.0} and max(by_source["probe"]) == 1.0
    summary = json.loads((out / "summary.json").read_text())
    screening = summary["screening"]
    assert 0 < screening["probe_env_steps"] <= 20_000
    trained = json.loads((out / "iter_00" / "cand_00" / "result.json").read_text())["train"]["env_steps"]
    assert summary["env_steps"] == trained + screening["probe_env_steps"]  # the probe's training counts
    verdict = json.loads((out / "iter_00" / "cand_00" / "critic.json").read_text())["screening"]
    assert verdict["judged"] and verdict["passed"] and verdict["correlation"] > 0.5
    assert not (out / "checks" / "probe").exists()  # its scratch folder is gone


def test_the_builtin_designer_records_a_few_random_episodes_and_no_probe_and_learns_where_episodes_start(tmp_path):
    # the goal no random policy reaches, with the cart held right of 0.5 m: every episode starts
    # near the centre, so the designer's cart term rises steeply from there (it got the starts)
    goal = UNREACHED_GOAL.replace("abs(cart_pos) < 2.4", "cart_pos > 0.5")
    out = tmp_path / "run"
    proc = run_cli("solve", "tasks/cartpole.yaml", "--iterations", "1", "--samples", "1", "--sandbox", "process",
                   "--set", f"fitness.expression={goal}", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    screening = json.loads((out / "summary.json").read_text())["screening"]
    assert screening["random_episodes"] == 8 and screening["probe_env_steps"] == 0
    code = (out / "iter_00" / "cand_00" / "reward.py").read_text()
    assert "2.0 * torch.clamp((cart_pos - " in code, code  # the steep ramp from the observed start
