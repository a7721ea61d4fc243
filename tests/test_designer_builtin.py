import pytest
import torch
from conftest import TASKS

from rewardsmith import envs
from rewardsmith.critic import static_check
from rewardsmith.designer import DesignRequest
from rewardsmith.designer.builtin import BuiltinDesigner, RewardPlan
from rewardsmith.envs.description import ActionSpec, EnvDescription, StateVar
from rewardsmith.reward import RewardFunction
from rewardsmith.schemas import Analysis, CandidateResult, Feedback, Finding, IterationRecord, Stats, TrainCheckpoint, TrainLog
from rewardsmith.task import load_task

TOY = EnvDescription(
    id="toy:Toy", summary="toy", max_episode_steps=10,
    variables=(StateVar(name="x", description="", low=-2.0, high=2.0),
               StateVar(name="vel", description=""),
               StateVar(name="pos", description="", shape=(2,))),
    action=ActionSpec(kind="continuous", shape=(2,), low=(-1.0, -1.0), high=(1.0, 1.0)))


def toy_state(n=5):
    return {"x": torch.linspace(-2, 2, n), "vel": torch.linspace(-1, 3, n), "pos": torch.randn(n, 2)}


@pytest.mark.parametrize("fitness", [
    "mean(abs(x) < 0.5 and vel > 1)",
    "sum(x > 1.5) / max_episode_steps",
    "mean(x < -1) + 0.5 * mean(vel)",
    "-mean(abs(vel))",
    "mean(norm(pos) < 0.1 or not (x > 0))",
    "any(x >= 1.9) - 0.01 * episode_length",
    "mean(vel == 1)",
    "last(pos[0] > 0.5)",
    "episode_length / max_episode_steps",
    "mean(0 < x < 1)",
])
def test_generated_code_is_valid_for_any_fitness(fitness):
    plan = RewardPlan(fitness, TOY)
    code = plan.render(plan.default_params())
    assert static_check(code, TOY.reward_arguments).ok, code
    fn = RewardFunction(code, TOY.reward_arguments)
    total, parts = fn.checked_call(toy_state(), torch.rand(5, 2) * 2 - 1, 5)
    assert torch.isfinite(total).all() and parts, code


def test_smooth_terms_follow_the_conditions():
    plan = RewardPlan("mean(abs(x) < 0.5 and vel > 1)", TOY)
    fn = RewardFunction(plan.render(plan.default_params()), TOY.reward_arguments)
    x = torch.tensor([0.0, 0.25, 1.0, 0.0])
    vel = torch.tensor([2.0, 2.0, 2.0, 0.0])
    total, parts = fn.checked_call({"x": x, "vel": vel, "pos": torch.zeros(4, 2)}, torch.zeros(4, 2), 4)
    assert set(parts) == {"x_small", "vel_high", "action_cost"}
    small = parts["x_small"]
    assert small[0] > small[1] > small[2]            # exp(-|x|/c): best at 0
    assert parts["vel_high"][0] == 1.0 and parts["vel_high"][3] < 1.0  # satisfied -> 1, below -> less
    assert total[0] > total[2] and total[0] > total[3]


def test_minimised_terms_are_subtracted():
    plan = RewardPlan("-mean(abs(vel))", TOY)
    code = plan.render(plan.default_params())
    fn = RewardFunction(code, TOY.reward_arguments)
    total, _ = fn.checked_call({"x": torch.zeros(2), "vel": torch.tensor([0.0, 2.0]), "pos": torch.zeros(2, 2)},
                               torch.zeros(2, 2), 2)
    assert total[0] > total[1]


def test_first_iteration_samples_distinct_candidates():
    task = load_task(TASKS / "cartpole.yaml")
    cands = BuiltinDesigner().propose(DesignRequest(task, envs.describe("torch:CartPole"), [], 0, 4))
    assert [c.index for c in cands] == [0, 1, 2, 3]
    assert len({c.code for c in cands}) == 4
    assert cands[0].origin["params"]["temperatures"] == {"pole_angle_small": 1.0, "cart_pos_small": 1.0}


def _result(index, fitness, params, findings, means=None):
    stats = lambda m: Stats(mean=m, std=0.001, min=m, max=m)  # noqa: E731
    train = TrainLog(checkpoints=[TrainCheckpoint(step=1, wall_s=1, reward=stats(0.5), episodes=1,
                                                  components={k: stats(m) for k, m in (means or {}).items()})],
                     env_steps=1, wall_s=1, steps_per_s=1)
    return CandidateResult(iteration=0, index=index, status="ok", fitness=fitness, reward_file="r.py", train=train,
                           origin={"params": params}, analysis=Analysis(findings=findings, text=""))


def test_refinement_applies_findings_to_the_best_candidate():
    task = load_task(TASKS / "cartpole.yaml")
    env = envs.describe("torch:CartPole")
    designer = BuiltinDesigner()
    first = designer.propose(DesignRequest(task, env, [], 0, 2))
    best = _result(1, 0.9, first[1].origin["params"],
                   [Finding(kind="constant", component="cart_pos_small", detail=""),
                    Finding(kind="dominating", component="pole_angle_small", detail="")],
                   means={"cart_pos_small": 0.99, "pole_angle_small": 0.7})
    worse = _result(0, 0.2, first[0].origin["params"], [])
    history = [IterationRecord(iteration=0, candidates=[worse, best],
                               feedback=Feedback(iteration=0, kind="metric", best=1, worst=0, order=[1, 0]))]
    refined = designer.propose(DesignRequest(task, env, history, 1, 3))
    parent = first[1].origin["params"]
    child = refined[0].origin["params"]
    assert child["temperatures"]["cart_pos_small"] == pytest.approx(parent["temperatures"]["cart_pos_small"] * 0.5, abs=1e-3)
    assert child["weights"]["pole_angle_small"] == pytest.approx(parent["weights"]["pole_angle_small"] * 0.5, abs=1e-3)
    assert "refined from iteration 0 candidate 1" in refined[0].origin["notes"][0]


def test_constant_near_zero_is_widened_and_no_progress_adds_motion():
    task = load_task(TASKS / "cartpole.yaml")
    env = envs.describe("torch:CartPole")
    designer = BuiltinDesigner()
    first = designer.propose(DesignRequest(task, env, [], 0, 1))
    stuck = _result(0, 0.0, first[0].origin["params"],
                    [Finding(kind="constant", component="pole_angle_small", detail=""),
                     Finding(kind="no_progress", detail="")], means={"pole_angle_small": 0.001})
    history = [IterationRecord(iteration=0, candidates=[stuck],
                               feedback=Feedback(iteration=0, kind="metric", best=0, order=[0]))]
    child = designer.propose(DesignRequest(task, env, history, 1, 1))[0]
    params = child.origin["params"]
    assert params["temperatures"]["pole_angle_small"] == pytest.approx(2.0)
    assert params["motion_weight"] > 0 and "motion = " in child.code
    fn = RewardFunction(child.code, env.reward_arguments)
    _, parts = fn.checked_call({k: torch.zeros(3) for k in env.variable_names}, torch.zeros(3), 3)
    assert "motion" in parts


def test_reach_goals_become_costs():
    """Reaching the goal ends the episode, so the reward must not pay the policy to stay away."""
    plan = RewardPlan("any(x > 1.5)", TOY)
    fn = RewardFunction(plan.render(plan.default_params()), TOY.reward_arguments)
    total, _ = fn.checked_call(toy_state(), torch.zeros(5, 2), 5)
    assert (total <= 0).all() and total[-1] == 0.0


def test_never_proposes_a_reward_already_tried():
    task = load_task(TASKS / "cartpole.yaml")
    env = envs.describe("torch:CartPole")
    designer = BuiltinDesigner()
    first = designer.propose(DesignRequest(task, env, [], 0, 3))
    # the best had no findings: refining it changes nothing, so the designer must vary it
    best = _result(0, 0.9, first[0].origin["params"], [], means={"pole_angle_small": 0.7})
    best = best.model_copy(update={"code": first[0].code})
    history = [IterationRecord(iteration=0, candidates=[best],
                               feedback=Feedback(iteration=0, kind="metric", best=0, order=[0]))]
    refined = designer.propose(DesignRequest(task, env, history, 1, 3))
    assert len(refined) == 3 and len({c.code for c in refined}) == 3
    assert first[0].code not in {c.code for c in refined}
    assert "refined from iteration 0 candidate 0" in refined[0].origin["notes"][0]
