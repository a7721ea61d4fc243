"""The SAC trainer: its pieces against references, that it learns, and what it hands on."""

import math

import pytest
import torch
import yaml
from conftest import TASKS

from rewardsmith import envs
from rewardsmith.envs.description import ActionSpec
from rewardsmith.errors import RewardCodeError, TaskFileError
from rewardsmith.expressions import FitnessProgram
from rewardsmith.task import load_task, parse_task
from rewardsmith.train import train
from rewardsmith.train.config import PPOConfig, SACConfig
from rewardsmith.train.evaluate import evaluate_policy
from rewardsmith.train.policy import SquashedGaussianActor, build_policy, load_policy, save_policy
from rewardsmith.train.rollout import record_rollout
from rewardsmith.train.sac import TwinQ

UPRIGHT = "mean(cos_theta > 0.95)"


def pendulum_reward(variables, action):
    """Pendulum-v1's own reward, with its parts as components and a constant one."""
    angle, speed = variables["theta"].square(), 0.1 * variables["theta_dot"].square()
    effort = 0.001 * action[:, 0].square()
    return -(angle + speed + effort), {"angle": angle, "speed": speed, "one": torch.ones_like(angle)}


def sac(**settings) -> SACConfig:
    return SACConfig(algorithm="sac", **settings)


@pytest.fixture(autouse=True)
def one_thread():
    """As the worker runs small jobs: on a shared CPU, more threads only wait for each other."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_twin_critic_is_two_ordinary_mlps():
    torch.manual_seed(0)
    critic = TwinQ(5, (16, 8))
    obs, action = torch.randn(32, 3), torch.randn(32, 2)
    q = critic(obs, action)
    assert q.shape == (2, 32)
    x = torch.cat([obs, action], 1)
    for i in range(2):
        h = x
        for layer in range(3):
            h = h @ critic.params[2 * layer][i] + critic.params[2 * layer + 1][i, 0]
            h = torch.relu(h) if layer < 2 else h
        assert torch.allclose(q[i], h.squeeze(1), atol=1e-6)
    assert not torch.allclose(q[0], q[1])  # two copies, initialised apart


def test_squashed_log_prob_matches_torch_distributions():
    torch.manual_seed(0)
    spec = ActionSpec(kind="continuous", shape=(2,), low=(-2.0, 0.0), high=(2.0, 1.0))
    actor = SquashedGaussianActor(3, spec, (16,))
    obs = torch.randn(64, 3)
    torch.manual_seed(1)
    action, logp = actor.sample(obs)
    mean, log_std = actor.net(obs).split(2, -1)
    dist = torch.distributions.TransformedDistribution(
        torch.distributions.Normal(mean, log_std.clamp(-20, 2).exp()), [torch.distributions.TanhTransform()])
    expected = dist.log_prob(action.clamp(-1 + 1e-6, 1 - 1e-6)).sum(-1)
    assert torch.allclose(logp, expected, atol=1e-3)
    assert action.abs().max() < 1
    scaled = actor.act(obs)
    assert (scaled[:, 0].abs() <= 2).all() and (scaled[:, 1] >= 0).all() and (scaled[:, 1] <= 1).all()


def test_sac_swings_the_torch_pendulum_up():
    env = envs.make("torch:Pendulum", num_envs=4, seed=0)
    program = FitnessProgram(UPRIGHT, set(env.description.variable_names))
    eval_env = envs.make("torch:Pendulum", num_envs=16, seed=7)
    config = sac(total_timesteps=12_000, learning_rate=1e-3, hidden_sizes=(64, 64), utd_ratio=1.0,
                 learning_starts=1000, eval_every=500)
    seen = []
    out = train(env, pendulum_reward, config, program,
                evaluate=lambda p: evaluate_policy(p, eval_env, program, 0.6, variables=False).fitness,
                success_threshold=0.6, on_checkpoint=lambda c, total: seen.append((c.step, total)))
    log = out.log
    assert log.algorithm == "sac" and log.stopped_early and log.env_steps < 12_000
    # one gradient step per env transition after the random warm-up
    assert log.gradient_steps == log.env_steps - 1000
    assert [s for s, _ in seen] == [c.step for c in log.checkpoints] and seen[0][1] == 12_000
    last = log.checkpoints[-1]
    assert last.eval_fitness >= 0.6
    assert set(last.components) == {"angle", "speed", "one"}
    assert last.components["one"].mean == 1.0 and last.components["one"].std == 0.0
    assert last.reward.max <= 0 and last.episodes > 0 and last.fitness is not None
    assert set(last.diagnostics) == {"q_loss", "actor_loss", "alpha", "q_mean", "entropy"}
    assert last.diagnostics["alpha"] < 0.5  # tuned down from 1.0 as the policy's entropy fell
    assert all(math.isfinite(v) for c in log.checkpoints for v in c.diagnostics.values())
    # a fresh evaluation on other starting states agrees
    fresh = evaluate_policy(out.policy, envs.make("torch:Pendulum", num_envs=32, seed=123), program, 0.6)
    assert fresh.fitness > 0.5


def test_sac_checkpoint_loads_for_evaluation_without_the_reward(tmp_path):
    task = load_task(TASKS / "pendulum_sac.yaml")
    config = task.train.model_copy(update={"total_timesteps": 400, "learning_starts": 200, "normalize_obs": True,
                                           "hidden_sizes": (32, 32), "early_stop": False})
    env = task.env.make(2, seed=0)
    out = train(env, pendulum_reward, config)
    assert isinstance(out.policy, SquashedGaussianActor) and out.log.gradient_steps > 0
    path = tmp_path / "policy.pt"
    save_policy(out.policy, path)
    saved = torch.load(path, weights_only=True)
    assert set(saved) == {"net.layers.0.weight", "net.layers.0.bias", "net.layers.1.weight", "net.layers.1.bias",
                          "net.layers.2.weight", "net.layers.2.bias", "obs_norm.mean", "obs_norm.var",
                          "obs_norm.count"}  # the actor alone: no critics, no action bounds
    assert float(saved["obs_norm.count"]) > 1  # the normaliser learned and was saved
    loaded = load_policy(path, env.obs_dim, task.env.describe().action, config)
    program = FitnessProgram(task.fitness.expression, set(env.description.variable_names))
    a = evaluate_policy(out.policy, task.env.make(8, seed=5), program, 0.6)
    b = evaluate_policy(loaded, task.env.make(8, seed=5), program, 0.6)
    assert a.fitness_per_episode == b.fitness_per_episode and a.variables == b.variables
    obs = torch.randn(16, 3)
    assert torch.equal(out.policy.act(obs, deterministic=True), loaded.act(obs, deterministic=True))
    trace, frames = record_rollout(loaded, task.env.make(1, seed=1), pendulum_reward)
    assert trace.steps == 200 and set(trace.components) == {"angle", "speed", "one"} and len(frames) > 1
    with pytest.raises(RuntimeError):  # PPO's settings describe another network
        load_policy(path, env.obs_dim, task.env.describe().action, PPOConfig())


def test_sac_refuses_discrete_actions_and_says_to_use_ppo():
    env = envs.make("torch:CartPole", num_envs=2)
    with pytest.raises(ValueError, match="continuous actions.*use train.algorithm: ppo"):
        train(env, lambda v, a: (v["pole_angle"], {}), sac(total_timesteps=100))
    with pytest.raises(ValueError, match="continuous actions"):
        build_policy(4, env.action_spec, sac())


def test_sac_fails_a_reward_that_is_not_finite():
    env = envs.make("torch:Pendulum", num_envs=2)

    def reward(v, a):
        r = torch.where(v["theta"] > 0, torch.nan, -v["theta"].abs())
        return r, {}

    with pytest.raises(RewardCodeError, match="NaN or infinite"):
        train(env, reward, sac(total_timesteps=200, learning_starts=100, hidden_sizes=(8,), checkpoints=1))


def test_train_section_picks_the_algorithm():
    assert isinstance(load_task(TASKS / "pendulum.yaml").train, PPOConfig)  # no algorithm: PPO
    task = load_task(TASKS / "pendulum_sac.yaml")
    assert isinstance(task.train, SACConfig) and task.train.gradient_steps_per_update(task.env.num_envs) == 4
    assert task.with_overrides(train={"total_timesteps": 50}).train == task.train.model_copy(
        update={"total_timesteps": 50})
    data = yaml.safe_load((TASKS / "pendulum_sac.yaml").read_text())

    def error(train: dict, **sections) -> str:
        with pytest.raises(TaskFileError) as err:
            parse_task({**data, "train": train, **sections}, "t.yaml")
        return str(err.value)

    assert error({"algorithm": "sac", "num_steps": 32}) == \
        "t.yaml: train.num_steps: unknown field for train.algorithm sac (check the spelling)"
    assert error({"algorithm": "sac", "tau": 2}).startswith("t.yaml: train.tau: ")
    assert error({"algorithm": "sac", "utd_ratio": 1, "gradient_steps": 2}).endswith(
        "set either utd_ratio or gradient_steps, not both")
    assert error({"algorithm": "dqn"}) == "t.yaml: train: algorithm must be one of: ppo, sac"
    cartpole = yaml.safe_load((TASKS / "cartpole.yaml").read_text())
    assert error({"algorithm": "sac"}, env=cartpole["env"], fitness=cartpole["fitness"]) == \
        "t.yaml: train.algorithm: SAC here is for continuous actions, and torch:CartPole has discrete ones: use ppo"
    assert isinstance(parse_task({**data, "train": {"algorithm": "ppo", "num_steps": 8}}).train, PPOConfig)
