"""The builtin designer's shaping for two kinds of condition that a single smooth term serves
badly: a distance that must fall under a small radius, and a speed to exceed in one direction."""

import numpy as np
import pytest
import torch

from rewardsmith.designer import DesignRequest
from rewardsmith.designer.builtin import COARSE_FACTOR, BuiltinDesigner, RewardPlan
from rewardsmith.envs.description import ActionSpec, EnvDescription, StateVar
from rewardsmith.reward import RewardFunction
from rewardsmith.schemas import Analysis, CandidateResult, Feedback, Finding, IterationRecord, Stats, TrainCheckpoint, TrainLog
from rewardsmith.task import TaskSpec

ARM = EnvDescription(
    id="toy:Arm", summary="an arm", max_episode_steps=50,
    variables=(StateVar(name="tip", shape=(3,), unit="m"), StateVar(name="goal", shape=(3,), unit="m"),
               StateVar(name="gap", unit="m", low=0.0, high=4.0),
               StateVar(name="angle", unit="rad", low=-0.4, high=0.4),
               StateVar(name="speed", unit="m/s", low=-5.0, high=10.0),
               StateVar(name="spin", unit="rad/s"),
               StateVar(name="level", unit="-", low=-1.0, high=1.0)),
    action=ActionSpec(kind="continuous", shape=(2,), low=(-1.0, -1.0), high=(1.0, 1.0)))


def _reward(fitness: str, params=None):
    plan = RewardPlan(fitness, ARM)
    code = plan.render(params or plan.default_params())
    fn = RewardFunction(code, ARM.reward_arguments)

    def call(**values):
        n = len(next(iter(values.values())))
        state = {"tip": torch.zeros(n, 3), "goal": torch.zeros(n, 3), "gap": torch.zeros(n), "angle": torch.zeros(n),
                 "speed": torch.zeros(n), "spin": torch.zeros(n), "level": torch.zeros(n)}
        state.update(values)
        return fn.checked_call(state, torch.zeros(n, 2), n)

    return plan, code, call


def test_a_small_radius_keeps_a_slope_far_from_the_goal():
    plan, code, call = _reward("mean(norm(tip - goal) < 0.05)")
    far = torch.tensor([[0.0, 0.0, 0.0], [0.05, 0, 0], [0.5, 0, 0], [0.6, 0, 0], [1.0, 0, 0], [1.1, 0, 0]])
    _, parts = call(tip=far)
    score = parts["goal_tip_small"]
    assert score[0] == pytest.approx(1.0) and (score[:-1] > score[1:]).all()   # best at the goal, falls off
    # ten and twenty radii out the score still moves by several hundredths per 10 cm (exp(-d/0.05) alone:
    # by 1e-5 and 1e-9), and most of the score is kept for the last few centimetres
    assert score[2] - score[3] > 0.02 and score[4] - score[5] > 0.01
    assert score[0] - score[1] > 0.3
    assert f"/ {COARSE_FACTOR * 0.05:g}" in code  # no range declared: ten radii, until a run shows more


def test_a_declared_range_sets_the_coarse_scale_and_a_wide_radius_stays_one_term():
    _, code, _ = _reward("mean(gap < 0.1)")
    assert "/ (1.0 + gap / 2.0)" in code                      # half of gap's range [0, 4]
    _, wide, _ = _reward("mean(abs(angle) < 0.3)")
    assert "torch.exp(-torch.abs(angle) / 0.3)" in wide and "1.0 +" not in wide


def _history_with(plan, params, first_value):
    stats = Stats(mean=first_value, std=0.01, min=first_value, max=first_value)
    log = TrainLog(checkpoints=[TrainCheckpoint(step=1, wall_s=1, reward=stats, episodes=1,
                                                components={"goal_tip_small": stats})],
                   env_steps=1, wall_s=1, steps_per_s=1)
    parent = CandidateResult(iteration=0, index=0, status="ok", fitness=0.1, reward_file="r.py", train=log,
                             origin={"params": params.to_dict()})
    return [IterationRecord(iteration=0, candidates=[parent],
                            feedback=Feedback(iteration=0, kind="metric", best=0, order=[0]))]


def test_the_coarse_scale_follows_the_distances_a_trained_candidate_started_from():
    task = TaskSpec.model_validate({"name": "t", "description": "d", "env": {"backend": "torch", "id": "Reacher"},
                                    "fitness": {"expression": "mean(norm(tip - goal) < 0.05)", "success_threshold": 0.5}})
    plan = RewardPlan(task.fitness.expression, ARM)
    params = plan.default_params()
    # a leaf value of 0.1 at the start means 0.5 / (1 + d / 0.5) = 0.1: the arm started 2 m away
    history = _history_with(plan, params, 0.1)
    child = BuiltinDesigner().propose(DesignRequest(task, ARM, history, 1, 1))[0]
    assert child.origin["params"]["coarse"]["goal_tip_small"] == pytest.approx(4.0)
    assert "/ (1.0 + torch.linalg.vector_norm((tip - goal), dim=-1) / 2.0)" in child.code
    assert any("observed starting distance (2)" in n for n in child.origin["notes"])


@pytest.mark.parametrize("fitness, name, sign", [("mean(speed > 2)", "speed_high", 1.0),
                                                  ("mean(speed < -2)", "speed_low", -1.0),
                                                  ("mean(spin > 3)", "spin_high", 1.0)])
def test_a_speed_to_exceed_pays_from_rest_to_past_the_threshold(fitness, name, sign):
    var = name.split("_")[0]
    threshold = 3.0 if var == "spin" else 2.0
    values = sign * torch.tensor([-1.0, 0.0, 0.5 * threshold, threshold, 2 * threshold, 10.0])
    _, code, call = _reward(fitness)
    _, parts = call(**{var: values})
    score = parts[name]
    assert score[:2].tolist() == [0.0, 0.0]            # standing still or going the wrong way earns nothing
    assert score[2:4].tolist() == pytest.approx([0.25, 0.5])   # a slope up to the threshold and on past it
    assert score[4:].tolist() == [1.0, 1.0]            # saturated at twice the threshold
    assert "-5.0" not in code                          # not from the declared range's low end (speed: -5)


def test_other_thresholds_keep_the_ramp_from_the_declared_range():
    _, code, call = _reward("mean(level > 0.5)")
    _, parts = call(level=torch.tensor([-1.0, 0.0, 0.5]))
    assert parts["level_high"].tolist() == pytest.approx([0.0, 2 / 3, 1.0])


HOPPER = EnvDescription(
    id="toy:Hopper", summary="a hopper", max_episode_steps=100,
    variables=(StateVar(name="height", unit="m", low=0.7, high=2.0), StateVar(name="drift", unit="m")),
    action=ActionSpec(kind="continuous", shape=(1,), low=(-1.0,), high=(1.0,)))


@pytest.mark.parametrize("stuck", [True, False])
def test_a_ramp_that_paid_for_standing_still_starts_where_the_policy_started(stuck):
    """``height > 1.4`` ramps from the range's end (0.7): standing at 1.25 earns 0.79 of it. When
    training made no progress, the next candidate's ramp starts at the observed 1.25."""
    task = TaskSpec.model_validate({"name": "t", "description": "d", "env": {"backend": "torch", "id": "Reacher"},
                                    "fitness": {"expression": "mean(height > 1.4)", "success_threshold": 0.2}})
    plan = RewardPlan(task.fitness.expression, HOPPER)
    params = plan.default_params()
    stats = Stats(mean=0.55 / 0.7, std=0.01, min=0.7, max=0.8)
    log = TrainLog(checkpoints=[TrainCheckpoint(step=1, wall_s=1, reward=stats, episodes=1, components={"height_high": stats})],
                   env_steps=1, wall_s=1, steps_per_s=1)
    findings = [Finding(kind="no_progress", detail="")] if stuck else []
    parent = CandidateResult(iteration=0, index=0, status="ok", fitness=0.0, reward_file="r.py", train=log,
                             origin={"params": params.to_dict()}, analysis=Analysis(findings=findings, text=""))
    feedback = Feedback(iteration=0, kind="metric", best=0, order=[0])
    history = [IterationRecord(iteration=0, candidates=[parent], feedback=feedback)]
    child = BuiltinDesigner().propose(DesignRequest(task, HOPPER, history, 1, 1))[0]
    if stuck:
        assert child.origin["params"]["starts"]["height_high"] == pytest.approx(1.25)
        assert "torch.clamp((height - 1.25) / 0.15, 0.0, 1.0)" in child.code
    else:
        assert "starts" not in child.origin["params"] and "(height - 0.7) / 0.7" in child.code


def _hopper_reward(fitness: str, starts: dict):
    plan = RewardPlan(fitness, HOPPER, starts)
    code = plan.render(plan.default_params())
    fn = RewardFunction(code, HOPPER.reward_arguments)
    return code, lambda height: fn.checked_call({"height": height, "drift": torch.zeros(len(height))},
                                                torch.zeros(len(height), 1), len(height))[1]


def test_a_height_every_episode_starts_at_pays_little_and_going_past_the_threshold_pays_most():
    """``height > 1.4`` held over the episode, every episode starting at 1.25 (as stored random
    episodes show): standing earns a third, the threshold two thirds, twice the gap past it all."""
    code, parts = _hopper_reward("mean(height > 1.4)", {"height": (1.245, 1.25, 1.256)})
    score = parts(torch.tensor([0.7, 1.25, 1.4, 1.55, 1.8]))["height_high"]
    assert score.tolist() == pytest.approx([0.0, 1 / 3, 2 / 3, 1.0, 1.0], abs=1e-4)
    # without an observed start, starts spread widely, or a goal that is reached once (it ends
    # the episode: nothing to gain past it): the ramp over the declared range, as before
    for fitness, starts in [("mean(height > 1.4)", {}), ("mean(height > 1.4)", {"height": (0.8, 1.1, 1.35)}),
                            ("any(height > 1.4)", {"height": (1.245, 1.25, 1.256)})]:
        code, parts = _hopper_reward(fitness, starts)
        assert "(height - 0.7) / 0.7" in code, (fitness, starts)
    # a start already past the threshold: nothing to shape there
    code, _ = _hopper_reward("mean(height > 1.4)", {"height": (1.49, 1.5, 1.51)})
    assert "(height - 0.7) / 0.7" in code


def test_the_store_tells_where_random_episodes_started(tmp_path):
    from rewardsmith.episodes import EpisodeBatch, EpisodeStore
    from rewardsmith.schemas import EpisodeMeta

    store = EpisodeStore(tmp_path, 1 << 20, {"height": (), "drift": ()})
    heights = np.array([1.25, 1.3, 1.1, 1.24, 1.0, 1.26, 0.9])  # three episodes: 3, 2 and 2 steps
    meta = [EpisodeMeta(source="random", fitness=0.0, length=n) for n in (3, 2, 2)]
    store.add(EpisodeBatch({"height": heights, "drift": np.zeros(7)}, np.zeros((7, 1)), meta))
    store.add(EpisodeBatch({"height": np.array([2.0]), "drift": np.zeros(1)}, np.zeros((1, 1)),
                           [EpisodeMeta(source="eval", fitness=1.0, length=1)]))  # not a start of the env's own
    p10, median, p90 = store.start_values()["height"]
    assert median == pytest.approx(1.25) and p10 == pytest.approx(1.242) and p90 == pytest.approx(1.258)
