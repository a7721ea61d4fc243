"""Named state for gymnasium's MuJoCo envs, derived from the model (rewardsmith/envs/gymnasium/mujoco.py)."""

import importlib
import time

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml

from rewardsmith import envs
from rewardsmith.envs.gymnasium.layout import _summary, describe_live, layout
from rewardsmith.errors import TaskFileError
from rewardsmith.task import load_task

pytest.importorskip("mujoco")
layout_module = importlib.import_module("rewardsmith.envs.gymnasium.layout")

MUJOCO_V5 = ["Ant", "HalfCheetah", "Hopper", "Humanoid", "HumanoidStandup", "InvertedDoublePendulum",
             "InvertedPendulum", "Pusher", "Reacher", "Swimmer", "Walker2d"]


@pytest.mark.parametrize("family", MUJOCO_V5)
def test_every_observation_entry_is_named_once_and_none_is_obs_n(family):
    d = layout(f"{family}-v5").description
    n = gym.make(f"{family}-v5").observation_space.shape[0]
    covered = np.zeros(n, dtype=int)
    for v in d.variables:
        assert not v.name.startswith("obs_"), f"{family}: {v.name} ({v.description})"
        assert v.description and "no documented meaning" not in v.description
        if v.obs is not None:
            lo, hi = v.obs if isinstance(v.obs, tuple) else (v.obs, v.obs + 1)
            covered[lo:hi] += 1
    assert (covered == 1).all(), f"{family}: entries named {covered.tolist()}"
    assert "Bodies that move" in d.structure and "\n  " in d.structure
    assert "](" not in d.summary and "Description" not in d.summary and len(d.summary) < 420


def test_reacher_names_come_from_its_model():
    d = envs.describe("gymnasium:Reacher-v5")
    by = {v.name: v for v in d.variables}
    assert [by[f"{f}_joint{i}"].obs for f in ("cos", "sin") for i in (0, 1)] == [0, 1, 2, 3]
    assert by["target_x_pos"].obs == 4 and by["joint1_vel"].obs == 7
    assert by["fingertip_rel_target_xy"].obs == (8, 10) and by["fingertip_rel_target_xy"].shape == (2,)
    # quantities the observation lacks: read after each step, from info
    assert by["fingertip_pos"].info == "fingertip_pos" and by["fingertip_pos"].shape == (3,)
    assert by["target_pos"].shape == (3,) and by["joint0_angle"].unit == "rad"
    assert by["joint1_angle"].low == pytest.approx(-3.0)   # the joint's range in the model
    # a constant (the fixed base link) or a copy of an observation entry is not offered
    assert "body0_pos" not in by and "target_x_vel" not in by
    assert "fingertip [" not in d.structure and "  target [slide target_x, slide target_y]" in d.structure


@pytest.mark.parametrize("family, names", [
    ("InvertedDoublePendulum", {"slider_pos": 0, "sin_hinge": 1, "cos_hinge2": 4, "slider_constraint_force": 8}),
    ("InvertedPendulum", {"slider_pos": 0, "hinge_angle": 1, "hinge_vel": 3}),
    ("Pusher", {"r_shoulder_pan_joint_angle": 0, "tips_arm_pos": (14, 17), "object_pos": (17, 20), "goal_pos": (20, 23)}),
    ("Swimmer", {"free_body_rot_angle": 0, "slider1_vel": 3, "motor2_rot_vel": 7}),
    ("HumanoidStandup", {"torso_z": 0, "torso_quat": (1, 5), "left_elbow_vel": 44, "body_inertias": (45, 175),
                         "body_velocities": (175, 253), "actuator_forces": (253, 270), "contact_forces": (270, 348)}),
])
def test_model_names_of_the_rest_of_the_set(family, names):
    d = envs.describe(f"gymnasium:{family}-v5")
    assert {n: d.variable(n).obs for n in names} == names


def test_clipped_velocities_say_so():
    hopper = {v.name: v for v in layout("Hopper-v5").description.variables}
    idp = envs.describe("gymnasium:InvertedDoublePendulum-v5")
    assert "clipped to ±10" in idp.variable("hinge_vel").description and idp.variable("hinge_vel").high == 10
    assert hopper["torso_z"].obs == 0  # the registry's own names stay


def test_registry_names_stay_and_model_quantities_are_added():
    cheetah = envs.describe("gymnasium:HalfCheetah-v5")
    names = cheetah.variable_names
    assert names[:2] == ["x_position", "x_velocity"] and "tip_angle" in names and "joint_angles" in names
    # the torso's real height (tip_z is rootz's displacement) and contact with the floor, from the model
    assert cheetah.variable("torso_height").info == "torso_height"
    assert cheetah.variable("bfoot_floor_contact").high == 1.0
    assert "rootx_pos" not in names  # the same as info['x_position']
    assert "bthigh_angle" not in names  # already in the observation (joint_angles)


@pytest.mark.parametrize("vectorization", ["sync", "async"])
def test_model_quantities_are_the_state_after_the_step(vectorization):
    env = envs.make("gymnasium:Reacher-v5", num_envs=3, seed=0, vectorization=vectorization)
    env.reset()
    torch.manual_seed(0)
    saw_end = False
    for _ in range(55):  # past the 50-step time limit: the last step's values come from final_info
        step = env.step(torch.rand(3, 2) * 2 - 1)
        v = step.variables
        assert v["fingertip_pos"].shape == (3, 3) and v["joint0_angle"].shape == (3,)
        # the extras (info) agree with the observation entries the model names
        assert torch.allclose(v["fingertip_pos"][:, :2] - v["target_pos"][:, :2], v["fingertip_rel_target_xy"],
                              atol=1e-5)
        assert torch.allclose(torch.cos(v["joint0_angle"]), v["cos_joint0"], atol=1e-5)
        saw_end |= bool(step.truncated.any())
    assert saw_end
    env.close()


def test_floor_contact_is_read_from_the_simulation():
    env = envs.make("gymnasium:Hopper-v5", num_envs=2, seed=0)
    env.reset()
    first = env.step(torch.zeros(2, 3))
    for _ in range(20):
        step = env.step(torch.zeros(2, 3))
    assert first.variables["foot_floor_contact"].tolist() == [0.0, 0.0]  # it starts a little above the floor
    assert step.variables["foot_floor_contact"].tolist() == [1.0, 1.0]   # and lands on its foot
    assert step.variables["torso_floor_contact"].tolist() == [0.0, 0.0]
    assert "torso_height" not in env.description.variable_names  # the same as torso_z (obs[0])
    env.close()


def test_describe_builds_one_env_and_stays_fast(monkeypatch):
    made = []
    real = layout_module.make_single
    monkeypatch.setattr(layout_module, "make_single", lambda *a, **k: made.append(a) or real(*a, **k))
    layout_module._layout.cache_clear()
    start = time.perf_counter()
    envs.describe("gymnasium:Humanoid-v5", reset_noise_scale=0.011)  # uncached
    assert len(made) == 1
    assert time.perf_counter() - start < 20  # under a second on an idle machine


def test_task_file_renames_a_model_quantity(tmp_path):
    def task(variables):
        path = tmp_path / "t.yaml"
        path.write_text(yaml.safe_dump({
            "name": "t", "description": "d", "fitness": {"expression": "mean(norm(tip) < 0.3)", "success_threshold": 1},
            "env": {"backend": "gymnasium", "id": "Reacher-v5", "variables": variables}}))
        return load_task(path)

    t = task([{"name": "tip", "info": "fingertip_pos", "unit": "m"}, {"name": "c0", "obs": 0}])
    d = t.env.describe()
    assert d.variable_names == ["tip", "c0"] and d.variable("tip").shape == (3,)
    env = t.env.make(2, seed=0)
    assert env.step(torch.zeros(2, 2)).variables["tip"].shape == (2, 3)
    env.close()
    with pytest.raises(TaskFileError, match=r"has shape \(3,\), not \(2,\)"):
        task([{"name": "tip", "info": "fingertip_pos", "shape": [2]}])


def test_an_env_the_user_built_is_described_without_quantities_it_lacks():
    import rewardsmith as rs

    live = describe_live(gym.make("Reacher-v5"))
    names = live.description.variable_names
    assert "cos_joint0" in names and "fingertip_pos" not in names and live.wrappers == ()
    code = "def compute_reward(fingertip_rel_target_xy):\n    d = fingertip_rel_target_xy.norm(dim=-1)\n    return -d, {'d': d}\n"
    env = rs.wrap(gym.make("Reacher-v5"), code)
    env.reset(seed=0)
    _, reward, *_ , info = env.step(env.action_space.sample())
    assert reward == pytest.approx(info["original_reward"] - info["reward_ctrl"], abs=1e-5)


@pytest.mark.parametrize("env_id, starts", [
    ("CartPole-v1", "A pole is attached by an un-actuated joint to a cart"),
    ("Acrobot-v1", "The system consists of two links"),
    ("InvertedPendulum-v5", "This environment consists of a cart"),
])
def test_summaries_are_one_clean_sentence(env_id, starts):
    text = _summary(env_id, gym.make(env_id).unwrapped)
    assert text.startswith(starts) and "goal" in text
    assert not any(mark in text for mark in ("](", "http", "Description", "`", "*", "\n")) and ". " not in text
