import gymnasium as gym
import numpy as np
import pytest
import torch

from rewardsmith import envs
from rewardsmith.errors import UnknownEnvError


def test_cartpole_matches_gymnasium_step_for_step():
    """Same start state and actions: same trajectory and terminations as CartPole-v1."""
    rng = np.random.default_rng(0)
    for episode in range(5):
        genv = gym.make("CartPole-v1")
        obs, _ = genv.reset(seed=episode)
        tenv = envs.make("torch:CartPole", num_envs=1, dtype=torch.float64)
        tenv.state = torch.tensor(genv.unwrapped.state, dtype=torch.float64)[None]
        for t in range(500):
            action = int(rng.integers(2)) if t % 7 else int(obs[2] > 0)
            obs, _, terminated, truncated, _ = genv.step(action)
            step = tenv.step(torch.tensor([action]))
            np.testing.assert_allclose(step.final_obs[0].numpy(), obs, rtol=1e-6, atol=1e-6)
            assert bool(step.terminated[0]) == terminated
            assert bool(step.truncated[0]) == truncated
            if terminated or truncated:
                break
        assert t > 5  # the episode was long enough to compare something


def test_cartpole_float32_batched_tracks_float64():
    a = envs.make("torch:CartPole", num_envs=256, seed=3)
    b = envs.make("torch:CartPole", num_envs=256, seed=3, dtype=torch.float64)
    b.state = a.state.double()
    gen = torch.Generator().manual_seed(0)
    alive = torch.ones(256, dtype=torch.bool)  # compare until an env resets (its new start is random)
    for _ in range(20):
        action = torch.randint(0, 2, (256,), generator=gen)
        sa, sb = a.step(action), b.step(action)
        torch.testing.assert_close(sa.final_obs[alive].double(), sb.final_obs[alive], atol=1e-4, rtol=1e-4)
        alive &= ~(sa.terminated | sa.truncated)
    assert alive.sum() > 100


def test_autoreset_and_named_state():
    env = envs.make("torch:CartPole", num_envs=8, seed=0, max_episode_steps=10)
    env.reset()
    for t in range(10):  # alternate pushes: the pole stays up for 10 steps
        step = env.step(torch.full((8,), t % 2))
    assert step.truncated.all() and not step.terminated.any()
    # the named variables are the state after the step, before reset; obs is the fresh start
    assert step.variables["cart_pos"].shape == (8,)
    torch.testing.assert_close(step.variables["cart_vel"], step.final_obs[:, 1])
    assert step.obs.abs().max() <= 0.05
    assert (env.elapsed == 0).all()
    assert set(step.variables) == set(env.description.variable_names)


def test_terminates_when_pole_falls():
    env = envs.make("torch:CartPole", num_envs=4, seed=0)
    env.reset()
    fell = torch.zeros(4, dtype=torch.bool)
    for _ in range(30):
        step = env.step(torch.ones(4, dtype=torch.long))  # always push right: the pole falls left
        assert (step.variables["pole_angle"][step.terminated] < -0.2094).all()
        fell |= step.terminated
    assert fell.all()


def test_describe_and_unknown():
    d = envs.describe("torch:CartPole")
    assert d.variable_names == ["cart_pos", "cart_vel", "pole_angle", "pole_vel"]
    assert "pole_angle" in d.to_text() and "rad" in d.to_text()
    with pytest.raises(UnknownEnvError, match="known: torch:CartPole"):
        envs.describe("torch:Nope")
    with pytest.raises(UnknownEnvError, match="BACKEND:ID"):
        envs.describe("CartPole")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cartpole_on_cuda():
    env = envs.make("torch:CartPole", num_envs=1024, device="cuda")
    step = env.step(torch.zeros(1024, dtype=torch.long, device="cuda"))
    assert step.obs.device.type == "cuda" and step.variables["pole_angle"].device.type == "cuda"
