"""rs.wrap: a rewardsmith reward on a gymnasium env the user already has (single and vector)."""

import gymnasium as gym
import numpy as np
import pytest
import torch

import rewardsmith as rs
from rewardsmith.errors import RewardCodeError, RewardsmithError

PENDULUM_REWARD = '''
import torch

def compute_reward(cos_theta: torch.Tensor, theta_dot: torch.Tensor, action: torch.Tensor):
    upright = (cos_theta + 1.0) / 2.0
    still = torch.exp(-theta_dot.abs())
    effort = action.square().sum(-1)
    return upright * still - 0.01 * effort, {"upright": upright, "still": still, "effort": effort}
'''


def test_single_env_reward_and_components_follow_the_state():
    env = rs.wrap(gym.make("Pendulum-v1"), PENDULUM_REWARD)
    obs, _ = env.reset(seed=0)
    for _ in range(5):
        action = env.action_space.sample()
        obs, reward, _, _, info = env.step(action)
        upright = (obs[0] + 1) / 2
        still = np.exp(-abs(obs[2]))
        assert info["reward_components"]["upright"] == pytest.approx(upright, rel=1e-5)
        assert reward == pytest.approx(upright * still - 0.01 * float(action[0]) ** 2, rel=1e-4, abs=1e-6)
        assert isinstance(info["original_reward"], float) and info["original_reward"] <= 0  # Pendulum's own
    assert env.description.variable_names == ["cos_theta", "sin_theta", "theta_dot"]


def test_reward_from_a_file_a_function_and_info_variables(tmp_path):
    path = tmp_path / "reward.py"
    path.write_text("import torch\ndef compute_reward(x_velocity):\n    return -x_velocity, {'back': -x_velocity}\n")
    env = rs.wrap(gym.make("HalfCheetah-v5"), str(path))
    env.reset(seed=0)
    _, reward, _, _, info = env.step(env.action_space.sample())
    assert reward == pytest.approx(-info["x_velocity"], rel=1e-5)

    def compute_reward(torso_z):
        return torso_z, {"height": torso_z}

    hopper = rs.wrap(gym.make("Hopper-v5"), compute_reward)
    obs, _ = hopper.reset(seed=0)
    obs, reward, *_ = hopper.step(hopper.action_space.sample())
    assert reward == pytest.approx(float(obs[0]), rel=1e-5)


def test_bad_rewards_are_rejected_when_wrapping(tmp_path):
    with pytest.raises(RewardCodeError, match="unknown argument 'pole_angle'"):
        rs.wrap(gym.make("Pendulum-v1"), "def compute_reward(pole_angle):\n    return pole_angle, {}\n")
    with pytest.raises(RewardsmithError, match="no such reward file"):
        rs.wrap(gym.make("Pendulum-v1"), str(tmp_path / "missing.py"))


@pytest.mark.parametrize("mode", [gym.vector.AutoresetMode.NEXT_STEP, gym.vector.AutoresetMode.SAME_STEP])
def test_vector_env_reads_the_state_before_autoreset(mode):
    code = "import torch\ndef compute_reward(cos_theta):\n    return cos_theta, {'c': cos_theta}\n"
    venv = gym.make_vec("Pendulum-v1", num_envs=3, vector_kwargs={"autoreset_mode": mode})
    env = rs.wrap(venv, code)
    env.reset(seed=0)
    horizon = 200
    for t in range(horizon + 1):
        obs, reward, terminated, truncated, info = env.step(np.zeros((3, 1), dtype=np.float32))
        assert reward.shape == (3,) and info["reward_components"]["c"].shape == (3,)
        if t == horizon - 1:
            assert truncated.all()
            last = info["final_obs"] if mode == gym.vector.AutoresetMode.SAME_STEP else obs
            assert np.allclose(reward, [o[0] for o in last], atol=1e-6)
        elif t == horizon and mode == gym.vector.AutoresetMode.NEXT_STEP:
            assert (reward == 0).all()  # the step that only resets earns nothing, as in gymnasium
        else:
            assert np.allclose(reward, obs[:, 0], atol=1e-6)


def test_stable_baselines3_ppo_trains_on_the_wrapped_env():
    from stable_baselines3 import PPO
    from stable_baselines3.common.callbacks import BaseCallback

    class Collect(BaseCallback):
        def __init__(self):
            super().__init__()
            self.components, self.rewards = [], []

        def _on_step(self) -> bool:
            info = self.locals["infos"][0]
            self.components.append(info["reward_components"])
            self.rewards.append(float(self.locals["rewards"][0]))
            return True

    torch.set_num_threads(1)
    env = rs.wrap(gym.make("Pendulum-v1"), PENDULUM_REWARD)
    model = PPO("MlpPolicy", env, n_steps=64, batch_size=32, n_epochs=2, seed=0, device="cpu")
    collect = Collect()
    model.learn(total_timesteps=128, callback=collect)
    assert model.num_timesteps >= 128 and len(collect.components) >= 128
    assert set(collect.components[0]) == {"upright", "still", "effort"}
    # the reward SB3 learned from is ours: upright * still - 0.01 * effort, within [-0.04, 1]
    c = collect.components[-1]
    assert collect.rewards[-1] == pytest.approx(c["upright"] * c["still"] - 0.01 * c["effort"], rel=1e-4, abs=1e-6)


def test_describe_objects_and_names():
    assert rs.describe(gym.make("Pendulum-v1")).variable_names == ["cos_theta", "sin_theta", "theta_dot"]
    assert rs.describe("torch:CartPole").variable_names[0] == "cart_pos"
    assert "x_velocity" in rs.describe(gym.make_vec("Hopper-v5", num_envs=2)).variable_names


# ---- the checkers gymnasium and Stable-Baselines3 users run -------------------------------------
CHECKED = {
    "Pendulum-v1": PENDULUM_REWARD,  # continuous actions
    "CartPole-v1": "import torch\ndef compute_reward(pole_angle, action):\n"
                   "    up = torch.exp(-pole_angle.abs())\n    return up, {'up': up}\n",  # discrete actions
    "HalfCheetah-v5": "import torch\ndef compute_reward(x_velocity):\n"
                      "    return -x_velocity, {'back': -x_velocity}\n",  # a variable read from info
}


@pytest.mark.parametrize("env_id", list(CHECKED))
def test_single_env_passes_gymnasium_and_sb3_env_checkers(env_id):
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = rs.wrap(gym.make(env_id), CHECKED[env_id])
    check_env(env, skip_render_check=True)  # includes env.spec.make(): the wrapper is rebuilt from its spec
    sb3_check_env(env, warn=False)
    rebuilt = env.spec.make()
    assert isinstance(rebuilt, type(env)) and rebuilt.description == env.description
    assert gym.envs.registration.EnvSpec.from_json(env.spec.to_json()).additional_wrappers[-1].kwargs["reward"] \
        == CHECKED[env_id]  # the reward is kept as code, so the spec survives JSON


def _rollout(vec, seed: int, steps: int = 8):
    out = [vec.reset(seed=seed)]
    vec.action_space.seed(seed)
    for _ in range(steps):
        out.append(vec.step(vec.action_space.sample()))
    return out


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_vector_env_behaves_as_gymnasium_vector_envs_must(mode):
    from gymnasium.utils.env_checker import data_equivalence

    code = CHECKED["Pendulum-v1"]
    make = lambda: rs.wrap(gym.make_vec("Pendulum-v1", num_envs=3, vectorization_mode=mode), code)  # noqa: E731
    first, second = make(), make()
    try:
        assert data_equivalence(_rollout(first, 5), _rollout(second, 5))  # seeded: the same steps, rewards, infos
        for obs, reward, terminated, truncated, info in _rollout(first, 6)[1:]:
            assert first.observation_space.contains(obs)
            assert reward.shape == (3,) and reward.dtype == np.float64 and np.isfinite(reward).all()
            assert terminated.dtype == truncated.dtype == np.bool_
            assert {k: v.shape for k, v in info["reward_components"].items()} == \
                {"upright": (3,), "still": (3,), "effort": (3,)}
        assert isinstance(first, gym.utils.RecordConstructorArgs) and first._saved_kwargs["reward"] == code
    finally:
        first.close()
        second.close()


def test_wrapped_envs_in_gymnasium_and_sb3_vector_envs():
    from stable_baselines3.common.env_util import make_vec_env
    from stable_baselines3.common.vec_env import VecCheckNan

    code = CHECKED["Pendulum-v1"]
    inner = gym.make_vec("Pendulum-v1", num_envs=2, wrappers=[lambda e: rs.wrap(e, code)])  # wrapper per copy
    inner.reset(seed=0)
    _, reward, _, _, info = inner.step(inner.action_space.sample())
    c = info["reward_components"]  # gymnasium batches each copy's components
    assert reward.shape == (2,) and np.allclose(reward, c["upright"] * c["still"] - 0.01 * c["effort"], atol=1e-6)
    inner.close()
    sb3 = VecCheckNan(make_vec_env(lambda: rs.wrap(gym.make("Pendulum-v1"), code), n_envs=2), raise_exception=True)
    sb3.reset()
    for _ in range(210):  # past a time limit: SB3's own autoreset
        _, rewards, _, infos = sb3.step(np.stack([sb3.action_space.sample() for _ in range(2)]))
    assert rewards.shape == (2,) and set(infos[0]["reward_components"]) == {"upright", "still", "effort"}
