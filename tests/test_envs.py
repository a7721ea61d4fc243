import gymnasium as gym
import numpy as np
import pytest
import torch

from rewardsmith import envs
from rewardsmith.errors import UnknownEnvError


def _discrete(n):
    return lambda rng, obs, t: int(rng.integers(n))


def _continuous(low, high):
    return lambda rng, obs, t: rng.uniform(low, high, size=(1,)).astype(np.float32)


@pytest.mark.parametrize("torch_id, gym_id, policy, steps, dtype, tol", [
    ("CartPole", "CartPole-v1", lambda rng, obs, t: int(rng.integers(2)) if t % 7 else int(obs[2] > 0),
     500, torch.float64, 1e-6),
    ("Pendulum", "Pendulum-v1", _continuous(-2.5, 2.5), 200, torch.float64, 1e-5),  # gym multiplies u in float32
    ("Acrobot", "Acrobot-v1", _discrete(3), 500, torch.float64, 1e-5),
    # gymnasium keeps this env's state in float32, so compare in float32
    ("MountainCarContinuous", "MountainCarContinuous-v0",
     lambda rng, obs, t: np.array([1.0 if obs[1] >= 0 else -1.0], dtype=np.float32), 999, torch.float32, 1e-5),
])
def test_matches_gymnasium_step_for_step(torch_id, gym_id, policy, steps, dtype, tol):
    """Same start state and actions: same observations, terminations and time limits as gymnasium."""
    rng = np.random.default_rng(0)
    compared = 0
    for episode in range(3):
        genv = gym.make(gym_id)
        obs, _ = genv.reset(seed=episode)
        tenv = envs.make(f"torch:{torch_id}", num_envs=1, dtype=dtype)
        tenv.state = torch.tensor(np.asarray(genv.unwrapped.state, dtype=np.float64), dtype=dtype)[None]
        for t in range(steps):
            action = policy(rng, obs, t)
            obs, _, terminated, truncated, _ = genv.step(action)
            step = tenv.step(torch.as_tensor(np.atleast_1d(action))[None] if np.ndim(action) else torch.tensor([action]))
            np.testing.assert_allclose(step.final_obs[0].numpy(), obs, rtol=tol, atol=tol)
            assert bool(step.terminated[0]) == terminated
            assert bool(step.truncated[0]) == truncated
            compared += 1
            if terminated or truncated:
                break
    assert compared > 30  # long enough to compare something


def test_acrobot_can_terminate():
    env = envs.make("torch:Acrobot", num_envs=256, seed=0)
    reached = torch.zeros(256, dtype=torch.bool)
    for _ in range(500):  # pump energy: torque along the second link's motion
        step = env.step(torch.where(env.state[:, 3] > 0, 2, 0))
        reached |= step.terminated
        assert (step.variables["tip_height"][step.terminated] > 1.0).all()
    assert reached.any()


def test_reacher_kinematics_and_control():
    env = envs.make("torch:Reacher", num_envs=64, seed=0, dtype=torch.float64)
    env.reset()
    v = env.variables()
    assert v["fingertip"].shape == (64, 2) and v["goal"].shape == (64, 2)
    # stretched arm along x: fingertip near (2, 0); goals inside the reachable annulus
    assert torch.allclose(v["fingertip"][:, 0], torch.full((64,), 2.0, dtype=torch.float64), atol=0.05)
    assert ((v["goal"].norm(dim=-1) >= 0.3) & (v["goal"].norm(dim=-1) <= 1.9)).all()
    torch.testing.assert_close(v["distance"], (v["fingertip"] - v["goal"]).norm(dim=-1))
    # no torque: a resting arm stays at rest; a shoulder torque turns it counter-clockwise
    still = env.step(torch.zeros(64, 2, dtype=torch.float64))
    torch.testing.assert_close(still.variables["joint_vel"], torch.zeros(64, 2, dtype=torch.float64))
    for _ in range(5):
        step = env.step(torch.tensor([[1.0, 0.0]] * 64, dtype=torch.float64))
    assert (step.variables["joint_vel"][:, 0] > 0).all()
    # energy dissipates with damping when no torque is applied
    speeds = [env.step(torch.zeros(64, 2, dtype=torch.float64)).variables["joint_vel"].norm(dim=-1).mean()
              for _ in range(40)]
    assert speeds[-1] < speeds[0]


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


@pytest.mark.parametrize("name", envs.known_envs())
def test_every_env_steps_on_its_own_description(name):
    env = envs.make(name, num_envs=5, seed=1)
    spec = env.action_spec
    obs = env.reset()
    assert obs.shape == (5, env.obs_dim)
    action = torch.zeros(5, dtype=torch.long) if spec.kind == "discrete" else torch.zeros(5, spec.size)
    step = env.step(action)
    assert set(step.variables) == set(env.description.variable_names)
    for var in env.description.variables:
        assert step.variables[var.name].shape == (5, *var.shape), var.name
    assert step.obs.shape == (5, env.obs_dim) and step.final_obs.shape == (5, env.obs_dim)


def test_describe_and_unknown():
    d = envs.describe("torch:CartPole")
    assert d.variable_names == ["cart_pos", "cart_vel", "pole_angle", "pole_vel"]
    assert "pole_angle" in d.to_text() and "rad" in d.to_text()
    with pytest.raises(UnknownEnvError, match="known: torch:CartPole"):
        envs.describe("torch:Nope")
    with pytest.raises(UnknownEnvError, match="BACKEND:ID"):
        envs.describe("CartPole")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cartpole_on_cuda():
    env = envs.make("torch:CartPole", num_envs=1024, device="cuda")
    step = env.step(torch.zeros(1024, dtype=torch.long, device="cuda"))
    assert step.obs.device.type == "cuda" and step.variables["pole_angle"].device.type == "cuda"
