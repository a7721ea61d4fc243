"""Meta-World through the gymnasium backend: named state, seeding, the success flag, and the
reference rewards of the shipped tasks (the env's own dense reward, over named state)."""

import inspect
import runpy

import numpy as np
import pytest
import torch
from conftest import ROOT, TASKS

from rewardsmith import envs
from rewardsmith.expressions import FitnessProgram
from rewardsmith.fitness import FitnessTracker
from rewardsmith.task import load_task

metaworld = pytest.importorskip("metaworld")

MT1 = "gymnasium:Meta-World/MT1"
SHIPPED = {"metaworld_reach": "reach-v3", "metaworld_drawer_close": "drawer-close-v3",
           "metaworld_handle_press": "handle-press-v3"}


def test_named_state_follows_the_shared_observation_layout():
    d = envs.describe(MT1, env_name="drawer-close-v3")
    by = {v.name: v for v in d.variables}
    assert by["hand_pos"].obs == (0, 3) and by["gripper_opening"].obs == 3 and by["obj_pos"].obs == (4, 7)
    assert by["prev_hand_pos"].obs == (18, 21) and by["prev_obj_pos"].obs == (22, 25) and by["goal_pos"].obs == (36, 39)
    assert "drawer_link" in by["obj_pos"].description        # which body the object is, from the model
    assert "does not turn" in by["obj_quat"].description     # the drawer slides: its quaternion is constant
    assert not any(n.startswith("obs_") for n in by) and "always zero (padding)" in d.observation
    assert by["success"].info == "success" and (by["success"].low, by["success"].high) == (0.0, 1.0)
    assert by["tcp_pos"].shape == (3,) and by["goal_slidey_pos"].unit == "m"   # the drawer's slide joint
    assert d.summary.startswith("Meta-World drawer close: a Sawyer robot arm")
    assert "drawer_link [slide goal_slidey]" in d.structure and "right_l0" not in d.structure
    reach = envs.describe(MT1, env_name="reach-v3")
    assert "(x, y, z, w)" in reach.variable("obj_quat").description  # the puck's quaternion, as the task reports it


def test_each_copy_draws_its_own_goals_reproducibly():
    def goals(seed):
        env = envs.make(MT1, num_envs=3, seed=seed, env_name="reach-v3")
        out = env.reset()[:, 36:39].clone()
        env.close()
        return out

    first = goals(0)
    assert len({tuple(g.tolist()) for g in first}) == 3   # the reset seed reaches Meta-World
    assert torch.equal(goals(0), first) and not torch.equal(goals(5), first)


def test_the_success_flag_is_usable_in_the_fitness_and_matches_the_task_fitness():
    """``max(success)`` and the reach task's fitness over named state score episodes alike."""
    task = load_task(TASKS / "metaworld_reach.yaml")
    env = task.env.make(4, seed=0)
    names = env.description.variable_names
    programs = [FitnessProgram("max(success)", set(names)), FitnessProgram(task.fitness.expression, set(names))]
    trackers = [FitnessTracker(p, 4, 150, {}, names, env.device) for p in programs]
    from metaworld.policies import SawyerReachV3Policy

    policy = SawyerReachV3Policy()
    obs = env.reset()
    torch.manual_seed(0)
    for t in range(150):
        scripted = torch.tensor(np.stack([policy.get_action(o) for o in obs.double().numpy()]), dtype=torch.float32)
        action = torch.where(torch.arange(4)[:, None] < 2, scripted, torch.rand(4, 4) * 2 - 1)  # 2 reach, 2 flail
        step = env.step(action)
        assert torch.equal(step.variables["success"] > 0.5,
                           (step.variables["tcp_pos"] - step.variables["goal_pos"]).norm(dim=-1) <= 0.05)
        for tracker in trackers:  # one 150-step episode per copy
            tracker.update(step.variables, step.action, step.terminated, step.truncated | (t == 149))
        obs = step.obs
    flag, fitness = (t.first_fitness for t in trackers)
    assert flag[:2].tolist() == [1.0, 1.0] and torch.equal(flag, fitness)
    env.close()


@pytest.mark.parametrize("task_file, env_name", SHIPPED.items())
def test_reference_reward_is_the_envs_own_dense_reward(task_file, env_name):
    fn = runpy.run_path(str(ROOT / "tasks" / "rewards" / f"{task_file}_reference.py"))["compute_reward"]
    wanted = list(inspect.signature(fn).parameters)
    task = load_task(TASKS / f"{task_file}.yaml")
    assert task.env.kwargs == {"env_name": env_name}
    env = task.env.make(2, seed=0)
    env.reset()
    torch.manual_seed(1)
    for _ in range(40):
        step = env.step(torch.rand(2, 4) * 2 - 1)
        total, parts = fn(**{n: step.action if n == "action" else step.variables[n] for n in wanted})
        assert torch.allclose(total, step.variables["unscaled_reward"], atol=1e-4), env_name
    env.close()
