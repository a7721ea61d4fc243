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
from rewardsmith.train.config import PPOConfig, SACConfig, with_algorithm
from rewardsmith.train.evaluate import evaluate_policy
from rewardsmith.train.policy import SquashedGaussianActor, build_policy, load_policy, save_policy
from rewardsmith.train.rollout import record_rollout
from rewardsmith.train.sac import TwinQ, relabel

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


PENDULUM_PROGRAM = FitnessProgram(UPRIGHT, set(envs.describe("torch:Pendulum").variable_names))
SOLVE = dict(total_timesteps=12_000, learning_rate=1e-3, hidden_sizes=(64, 64), utd_ratio=1.0, learning_starts=1000,
             eval_every=500)


def early_stop_on(program: FitnessProgram, threshold: float):
    eval_env = envs.make("torch:Pendulum", num_envs=16, seed=7)
    return {"evaluate": lambda p: evaluate_policy(p, eval_env, program, threshold, variables=False).fitness,
            "success_threshold": threshold}


@pytest.fixture(scope="module")
def solved():
    """SAC from scratch on the torch Pendulum (4 envs) until an evaluation passes 0.6 (~3,500 steps)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    seen = []
    out = train(envs.make("torch:Pendulum", num_envs=4, seed=0), pendulum_reward, sac(**SOLVE), PENDULUM_PROGRAM,
                on_checkpoint=lambda c, total: seen.append((c.step, total)), keep_experience=True,
                **early_stop_on(PENDULUM_PROGRAM, 0.6))
    torch.set_num_threads(threads)
    return out, seen


def test_sac_swings_the_torch_pendulum_up(solved):
    out, seen = solved
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
    fresh = evaluate_policy(out.policy, envs.make("torch:Pendulum", num_envs=32, seed=123), PENDULUM_PROGRAM, 0.6)
    assert fresh.fitness > 0.5


def test_sac_keeps_its_transitions_in_step_order(solved):
    out, _ = solved
    kept = out.experience
    assert kept.size == out.log.env_steps
    assert set(kept.variables) == {"cos_theta", "sin_theta", "theta_dot", "theta"} and kept.action.abs().max() <= 2
    # 4 envs a step: a transition's next observation is the next step's observation, except where
    # an episode ended (every 200 steps here)
    ended = kept.terminated[:-4] | (torch.arange(kept.size - 4) // 4 % 200 == 199)
    same = (kept.next_obs[:-4] - kept.obs[4:]).abs().amax(1) < 1e-6
    assert same[~ended].all() and not same[ended].any()
    assert torch.allclose(kept.variables["cos_theta"], kept.next_obs[:, 0])


def test_reused_experience_gets_another_reward_to_success_in_half_the_steps(solved):
    first, _ = solved

    def new_reward(variables, action):  # another candidate's reward for the same goal
        up = (variables["cos_theta"] + 1) / 2
        return up.square() - 0.01 * variables["theta_dot"].abs(), {"up": up}

    second = train(envs.make("torch:Pendulum", num_envs=4, seed=1), new_reward, sac(**SOLVE, seed=1),
                   PENDULUM_PROGRAM, experience=first.experience, **early_stop_on(PENDULUM_PROGRAM, 0.6))
    log = second.log
    assert log.reused_transitions == first.experience.size and log.stopped_early
    # half a gradient step per reused transition first, then one per env step: the reused
    # transitions count towards learning_starts, so there is no random warm-up
    assert log.gradient_steps == round(0.5 * first.experience.size) + log.env_steps
    assert 0.5 < log.reused_share < 1.0
    assert log.env_steps <= first.log.env_steps / 2


def test_relabelled_rewards_match_a_recomputation_and_cannot_change_the_experience():
    env = envs.make("torch:Pendulum", num_envs=3, seed=0)
    out = train(env, pendulum_reward, sac(total_timesteps=300, learning_starts=150, hidden_sizes=(16,),
                                          early_stop=False), keep_experience=True)
    kept = out.experience
    before = {k: v.clone() for k, v in kept.variables.items()}, kept.action.clone()

    def hostile(variables, action):
        r = torch.cos(variables["theta"]) + action[:, 0]
        variables["theta"].mul_(0.0)  # tries to change what the next candidate sees
        action.fill_(9.0)
        return r, {}

    rewards = relabel(kept, hostile, 3)
    assert torch.allclose(rewards, torch.cos(before[0]["theta"]) + before[1][:, 0])
    assert all(torch.equal(kept.variables[k], v) for k, v in before[0].items()) and torch.equal(kept.action, before[1])
    # a run seeded with more than its buffer holds keeps the newest transitions, in whole env steps
    small = sac(total_timesteps=30, buffer_size=100, learning_starts=0, hidden_sizes=(16,), early_stop=False,
                reuse_gradient_steps=0)
    log = train(env, pendulum_reward, small, experience=kept).log
    assert log.reused_transitions == 102 and log.gradient_steps == 10  # 34 steps of 3 envs fill the 100
    # each new step of 3 transitions overwrites the oldest reused ones: the share falls from 99/102 to 72/102
    assert 0.7 < log.reused_share < 1.0
    # gradient steps before the first env step: one per reused transition here, but at most the cap
    pretrained = lambda **cap: train(env, pendulum_reward, small.model_copy(  # noqa: E731
        update={"reuse_gradient_steps": 1.0, "total_timesteps": 3, **cap}), experience=kept).log.gradient_steps - 1
    assert pretrained() == 102 and pretrained(reuse_max_gradient_steps=7) == 7

    def nan_on_reuse(variables, action):
        return torch.full_like(variables["theta"], torch.nan), {}

    with pytest.raises(RewardCodeError, match="transitions reused from earlier runs"):
        train(env, nan_on_reuse, small, experience=kept)
    with pytest.raises(ValueError, match="off-policy"):
        train(env, pendulum_reward, PPOConfig(total_timesteps=100), experience=kept)


def test_sac_bootstraps_through_time_limits():
    """Episodes of 5 steps that all end by the time limit, reward 1 per step, gamma 0.9: the soft
    Q-values approach 1 / (1 - 0.9) = 10 if truncation is not taken for termination, and stay
    below 4.1 if it were."""
    env = envs.make("torch:Pendulum", num_envs=4, seed=0, max_episode_steps=5)
    config = sac(total_timesteps=2000, gamma=0.9, tau=0.05, ent_coef=1e-3, hidden_sizes=(32, 32),
                 learning_rate=3e-3, checkpoints=2, early_stop=False)
    out = train(env, lambda v, a: (torch.ones_like(v["theta"]), {}), config)
    q_mean = out.log.checkpoints[-1].diagnostics["q_mean"]
    assert 8.0 < q_mean < 11.0


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
        "t.yaml: train.num_steps: a field for ppo, not for sac"
    assert error({"algorithm": "sac", "tua": 0.1}) == "t.yaml: train.tua: unknown field (did you mean tau?)"
    assert error({"algorithm": "sac", "tau": 2}).startswith("t.yaml: train.tau: ")
    assert error({"algorithm": "sac", "utd_ratio": 1, "gradient_steps": 2}).endswith(
        "set either utd_ratio or gradient_steps, not both")
    assert error({"algorithm": "dqn"}) == "t.yaml: train: algorithm must be one of: ppo, sac"
    cartpole = yaml.safe_load((TASKS / "cartpole.yaml").read_text())
    assert error({"algorithm": "sac"}, env=cartpole["env"], fitness=cartpole["fitness"]) == \
        "t.yaml: train.algorithm: SAC here is for continuous actions, and torch:CartPole has discrete ones: use ppo"
    assert isinstance(parse_task({**data, "train": {"algorithm": "ppo", "num_steps": 8}}).train, PPOConfig)


def test_switching_algorithm_keeps_only_what_means_the_same():
    ppo = load_task(TASKS / "pendulum.yaml").train.model_copy(update={"seed": 3, "eval_every": 4000})
    switched = with_algorithm(ppo, "sac")
    assert switched == sac(seed=3, eval_every=4000)  # SAC's defaults otherwise (not PPO's 1M-step budget)
    assert with_algorithm(switched, "sac") is switched
    back = with_algorithm(switched, "ppo")
    assert isinstance(back, PPOConfig) and back.seed == 3 and back.num_steps == PPOConfig().num_steps
    with pytest.raises(ValueError, match="unknown algorithm 'td3'"):
        with_algorithm(ppo, "td3")


PENDULUM_REWARD = '''
import torch


def compute_reward(cos_theta: torch.Tensor, action: torch.Tensor):
    up = (cos_theta + 1.0) / 2.0
    return up, {"up": up}
'''


def test_algorithm_flag_overrides_the_task_and_is_checked_at_the_edge(tmp_path):
    from conftest import run_cli

    out = tmp_path / "cartpole"
    proc = run_cli("solve", str(TASKS / "cartpole.yaml"), "--algorithm", "sac", "--model", "builtin", "--out", str(out))
    assert proc.returncode == 2 and not out.exists()
    assert proc.stderr.strip().splitlines() == [
        "error: --algorithm: train.algorithm: SAC here is for continuous actions, and torch:CartPole has "
        "discrete ones: use ppo"]
    proc = run_cli("train", str(TASKS / "pendulum.yaml"), "--reward", "r.py", "--algorithm", "td3")
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "td3" in proc.stderr
    # a PPO task trained with SAC: the train section is SAC's, --set changes it
    reward = tmp_path / "reward.py"
    reward.write_text(PENDULUM_REWARD)
    proc = run_cli("train", str(TASKS / "pendulum.yaml"), "--reward", str(reward), "--algorithm", "sac",
                   "--sandbox", "process", "--total-timesteps", "300", "--set", "train.learning_starts=100",
                   "--set", "train.hidden_sizes=[16]", "--set", "fitness.eval_episodes=2",
                   "--out", str(tmp_path / "run"), "--json")
    assert proc.returncode == 0, proc.stderr[-2000:]
    result = yaml.safe_load((tmp_path / "run" / "result.json").read_text())
    assert result["train"]["algorithm"] == "sac" and result["train"]["env_steps"] > 0
    assert result["train"]["gradient_steps"] > 0
