"""The gymnasium backend: names, same-step autoreset semantics, fallbacks, task overrides, CLI."""

import json
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
import yaml
from conftest import ROOT, TASKS, run_cli

from rewardsmith import envs
from rewardsmith.errors import RewardsmithError, TaskFileError, UnknownEnvError
from rewardsmith.task import load_task


def test_pendulum_and_mujoco_names():
    assert envs.describe("gymnasium:Pendulum-v1").variable_names == ["cos_theta", "sin_theta", "theta_dot"]
    cheetah = envs.describe("gymnasium:HalfCheetah-v5")
    assert {"x_velocity", "x_position", "tip_angle", "joint_angles"} <= set(cheetah.variable_names)
    assert cheetah.variable("joint_angles").shape == (6,)
    assert cheetah.terminations == {} and cheetah.dt == pytest.approx(0.05)
    hopper = envs.describe("gymnasium:Hopper-v5")
    assert hopper.terminations["unhealthy_height"] == "torso_z < 0.7"  # no upper bound: inf is dropped
    # the env's own kwargs change the health ranges the description states
    tall = envs.describe("gymnasium:Hopper-v5", healthy_z_range=(0.9, 2.0))
    assert tall.terminations["unhealthy_height"] == "torso_z < 0.9 or torso_z > 2.0"
    ant = envs.describe("gymnasium:Ant-v5", include_cfrc_ext_in_observation=False)
    assert "contact_forces" not in ant.variable_names and ant.variable("torso_orientation").shape == (4,)


@pytest.mark.parametrize("env_id, n_obs", [("Hopper-v5", 11), ("Walker2d-v5", 17), ("Ant-v5", 105),
                                           ("Humanoid-v5", 348), ("HalfCheetah-v5", 17)])
def test_mujoco_names_cover_the_observation(env_id, n_obs):
    from rewardsmith.envs.gymnasium.layout import layout

    covered = np.zeros(n_obs, dtype=int)
    for v in layout(env_id).description.variables:
        if v.obs is not None:
            lo, hi = v.obs if isinstance(v.obs, tuple) else (v.obs, v.obs + 1)
            covered[lo:hi] += 1
    assert (covered == 1).all(), f"{env_id}: entries named {covered.tolist()}"


def test_exclude_positions_shifts_observation_names():
    env = envs.make("gymnasium:Hopper-v5", num_envs=2, seed=0, exclude_current_positions_from_observation=False)
    step = env.step(torch.zeros(2, 3))
    # obs[0] is now x; torso_z moved to obs[1], and it is a standing height, not a position near 0
    assert torch.allclose(step.variables["torso_z"], step.final_obs[:, 1])
    assert (step.variables["torso_z"] > 1.0).all()
    env.close()


def test_step_matches_plain_gymnasium_including_autoreset():
    """variables are the state after the step and before the reset; obs starts the next episode."""
    n, horizon = 2, 5
    env = envs.make("gymnasium:Pendulum-v1", num_envs=n, seed=3, max_episode_steps=horizon)
    plain = [gym.make("Pendulum-v1", max_episode_steps=horizon) for _ in range(n)]
    first = [p.reset(seed=3 + i)[0] for i, p in enumerate(plain)]
    assert np.allclose(env.reset().numpy(), np.stack(first), atol=1e-6)
    actions = torch.linspace(-2, 2, 2 * horizon * n).reshape(2 * horizon, n, 1)
    for t in range(2 * horizon):
        step = env.step(actions[t])
        for i, p in enumerate(plain):
            obs, _, term, trunc, _ = p.step(actions[t, i].numpy())
            assert step.variables["cos_theta"][i].item() == pytest.approx(float(obs[0]), abs=1e-5)
            assert step.variables["theta_dot"][i].item() == pytest.approx(float(obs[2]), abs=1e-5)
            assert bool(step.truncated[i]) == trunc and bool(step.terminated[i]) == term
            assert np.allclose(step.final_obs[i].numpy(), obs, atol=1e-5)  # the last state, before any reset
            if trunc:
                obs, _ = p.reset()  # same stream of reset seeds as the vector env's autoreset
            assert np.allclose(step.obs[i].numpy(), obs, atol=1e-5)
        assert torch.equal(step.final_obs[:, 0], step.variables["cos_theta"])
    env.close()


def test_info_variables_come_from_final_info_at_the_end_of_an_episode():
    env = envs.make("gymnasium:HalfCheetah-v5", num_envs=2, seed=0, max_episode_steps=3)
    env.reset()
    positions = []
    for _ in range(3):
        step = env.step(torch.ones(2, 6))
        positions.append(step.variables["x_position"].clone())
    assert bool(step.truncated.all())
    # the last step's x_position is the position reached, not the reset position near 0
    assert torch.allclose(positions[-1], positions[-2] + step.variables["x_velocity"] * 0.05, atol=1e-3)
    assert (positions[-1] != 0).all()
    env.close()


class DictObsEnv(gym.Env):
    """A tiny env with a Dict observation and a numeric info key (for the fallback naming)."""

    observation_space = gym.spaces.Dict({"pos": gym.spaces.Box(-1, 1, (2,)), "speed": gym.spaces.Box(0, 5, (1,))})
    action_space = gym.spaces.Discrete(3)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t = 0
        return self._obs(), {}

    def _obs(self):
        return {"pos": np.array([0.1 * self.t, -0.1], dtype=np.float32), "speed": np.array([self.t], dtype=np.float32)}

    def step(self, action):
        self.t += 1
        return self._obs(), 0.0, self.t >= 4, False, {"distance": 2.0 * self.t, "label": "x"}


gym.register("RewardsmithDictObs-v0", entry_point=DictObsEnv, max_episode_steps=50)


def test_fallback_names_from_dict_space_and_info():
    d = envs.describe("gymnasium:RewardsmithDictObs-v0")
    assert d.variable_names == ["pos", "speed", "distance"]
    assert d.variable("pos").shape == (2,) and d.variable("speed").shape == ()
    env = envs.make("gymnasium:RewardsmithDictObs-v0", num_envs=2, seed=0)
    env.reset()
    for t in range(1, 5):
        step = env.step(torch.tensor([0, 1]))
        assert step.variables["distance"].tolist() == [2.0 * t, 2.0 * t]
        assert step.variables["speed"].tolist() == [t, t]
    assert bool(step.terminated.all()) and step.obs[:, 2].tolist() == [0.0, 0.0]  # reset: speed back to 0
    env.close()


def _task(tmp_path, env_section):
    data = {"name": "t", "description": "d", "env": env_section,
            "fitness": {"expression": "mean(far)", "success_threshold": 1.0}}
    path = tmp_path / "task.yaml"
    path.write_text(yaml.safe_dump(data))
    return path


def test_task_file_names_its_own_variables(tmp_path):
    path = _task(tmp_path, {"backend": "gymnasium", "id": "RewardsmithDictObs-v0", "variables": [
        {"name": "x", "obs": 0, "unit": "m", "description": "x position"},
        {"name": "far", "info": "distance"},
        {"name": "everything", "obs": [0, 3]}]})
    task = load_task(path)
    d = task.env.describe()
    assert d.variable_names == ["x", "far", "everything"] and d.variable("everything").shape == (3,)
    env = task.env.make(2, seed=0)
    step = env.step(torch.tensor([0, 0]))
    assert step.variables["far"].tolist() == [2.0, 2.0] and step.variables["x"].tolist() == pytest.approx([0.1, 0.1])


@pytest.mark.parametrize("env_section, words", [
    ({"backend": "gymnasium", "id": "RewardsmithDictObs-v0", "variables": [{"name": "far", "obs": 9}]},
     "outside the observation"),
    ({"backend": "gymnasium", "id": "RewardsmithDictObs-v0", "variables": [{"name": "far", "info": "nope"}]},
     "no numeric key 'nope'"),
    ({"backend": "gymnasium", "id": "RewardsmithDictObs-v0", "variables": [{"name": "far", "obs": 0, "info": "x"}]},
     "exactly one of obs or info"),
    ({"backend": "torch", "id": "CartPole", "variables": [{"name": "far", "obs": 0}]}, "only for backend gymnasium"),
    ({"backend": "gymnasium", "id": "NoSuchEnv-v0"}, "unknown environment 'gymnasium:NoSuchEnv-v0'"),
])
def test_bad_gym_task_is_a_one_line_error(tmp_path, env_section, words):
    with pytest.raises(TaskFileError) as err:
        load_task(_task(tmp_path, env_section))
    assert words in str(err.value) and "\n" not in str(err.value)


def test_unknown_id_and_bad_kwargs_are_user_errors():
    with pytest.raises(UnknownEnvError, match="gymnasium:Pendulum-v9"):
        envs.describe("gymnasium:Pendulum-v9")
    with pytest.raises(RewardsmithError, match=r"env.kwargs: gymnasium:Pendulum-v1 does not take \{'no_such_kwarg'"):
        envs.describe("gymnasium:Pendulum-v1", no_such_kwarg=1)


def test_cli_describe_prints_named_variables_without_importing_torch():
    for env_id, names in [("gymnasium:Pendulum-v1", ["cos_theta", "sin_theta", "theta_dot"]),
                          ("gymnasium:HalfCheetah-v5", ["x_velocity", "x_position", "joint_angles"])]:
        proc = run_cli("describe", env_id)
        assert proc.returncode == 0, proc.stderr
        for name in names:
            assert f"  {name}: (num_envs" in proc.stdout
    probe = ("import sys, rewardsmith.task as t; t.load_task('tasks/halfcheetah_backward.yaml'); "
             "print('torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", probe], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert out.stdout.strip() == "False", out.stderr


def test_every_gym_task_names_real_variables():
    import importlib.util

    for path in sorted(TASKS.glob("*.yaml")):
        if "Meta-World/" in path.read_text() and importlib.util.find_spec("metaworld") is None:
            continue  # tests/test_task.py reports these as skipped
        task = load_task(path)
        if task.env.backend == "gymnasium":
            assert task.env.describe().id == f"gymnasium:{task.env.id}"


def test_mujoco_models_are_parsed_once_per_process_and_each_env_gets_its_own_copy(tmp_path):
    # a fresh process: the parse counter sees every parse since start
    script = r"""
import json, sys, torch, mujoco
import rewardsmith.envs.gymnasium.make as make
parses = []
real = mujoco.MjModel.from_xml_path
mujoco.MjModel.from_xml_path = staticmethod(lambda f, a=None: (parses.append(f), real(f) if a is None else real(f, a))[1])
from rewardsmith import envs
if sys.argv[1] == "plain":
    make.parse_models_once = lambda: None  # as before: every env parses its model
first = envs.make("gymnasium:Hopper-v5", 1, seed=3)
batch = envs.make("gymnasium:Hopper-v5", 4, seed=3)
models = [e.unwrapped.model for e in batch.venv.envs]
models[0].body_mass[1] += 5.0  # one env's change stays its own
batch.reset()
gen = torch.Generator().manual_seed(0)
for _ in range(30):
    step = batch.step(torch.rand(4, 3, generator=gen) * 2 - 1)
print(json.dumps({"parses": len(parses), "distinct": len({id(m) for m in models}),
                  "masses": [float(m.body_mass[1]) for m in models], "obs": step.obs[1:].tolist()}))
"""
    runs = {}
    for mode in ("cached", "plain"):
        done = subprocess.run([sys.executable, "-c", script, mode], capture_output=True, text=True, timeout=300,
                              cwd=tmp_path)
        assert done.returncode == 0, done.stderr[-2000:]
        runs[mode] = json.loads(done.stdout.strip().splitlines()[-1])
    cached, plain = runs["cached"], runs["plain"]
    assert plain["parses"] >= 5 and cached["parses"] == 1  # five envs (and the naming probe), one parse
    assert cached["distinct"] == 4 and cached["masses"][0] == cached["masses"][1] + 5.0
    assert cached["obs"] == plain["obs"]  # the copies simulate exactly what parsed models do
