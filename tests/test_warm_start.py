"""Warm start (``train.init: best``): the actor and observation normalisation come from another
reward's policy, the value function starts afresh and is fitted alone first."""

import torch

from rewardsmith.envs.torch.cartpole import CartPole
from rewardsmith.train.config import PPOConfig
from rewardsmith.train.policy import build_policy
from rewardsmith.train.ppo import train, warm_start


def _trained_like(env, config):
    policy = build_policy(env.obs_dim, env.action_spec, config)
    with torch.no_grad():
        for p in policy.parameters():
            p.add_(torch.randn_like(p))
        if policy.obs_norm is not None:
            policy.obs_norm.update(torch.randn(3, 64, env.obs_dim) * 5 + 2)
    return policy


def _upright(variables, action):
    upright = torch.exp(-variables["pole_angle"].abs() / 0.2)
    return upright, {"upright": upright}


def test_warm_start_takes_the_actor_and_normalisation_not_the_critic():
    env, config = CartPole(4, seed=0), PPOConfig()
    initial = _trained_like(env, config)
    fresh = build_policy(env.obs_dim, env.action_spec, config)
    critic_before = [p.clone() for p in fresh.critic.parameters()]
    warm_start(fresh, initial)
    for a, b in zip(fresh.actor.parameters(), initial.actor.parameters()):
        assert torch.equal(a, b)
    assert torch.equal(fresh.obs_norm.mean, initial.obs_norm.mean)
    assert torch.equal(fresh.obs_norm.var, initial.obs_norm.var)
    for a, b in zip(fresh.critic.parameters(), critic_before):
        assert torch.equal(a, b)


def test_the_first_update_of_a_warm_start_fits_the_value_function_alone():
    env = CartPole(8, seed=0)
    config = PPOConfig(num_steps=32, total_timesteps=8 * 32, normalize_obs=False, early_stop=False)
    initial = _trained_like(env, config)
    out = train(env, _upright, config, initial=initial)
    for a, b in zip(out.policy.actor.parameters(), initial.actor.parameters()):
        assert torch.equal(a, b)  # one update: the actor has not moved
    assert not all(torch.equal(a, b) for a, b in zip(out.policy.critic.parameters(), initial.critic.parameters()))
    two = train(CartPole(8, seed=0), _upright, config.model_copy(update={"total_timesteps": 2 * 8 * 32}),
                initial=initial)
    assert not all(torch.equal(a, b) for a, b in zip(two.policy.actor.parameters(), initial.actor.parameters()))


def test_a_solve_with_init_best_trains_the_next_candidate_from_the_best_policy(tmp_path):
    """Through the CLI and the sandboxed training job (a unit test of the trainer alone missed
    that the job never passed the policy on)."""
    import json

    from conftest import run_cli

    out = tmp_path / "run"
    proc = run_cli("solve", "tasks/cartpole.yaml", "--iterations", "2", "--samples", "1", "--sandbox", "process",
                   "--total-timesteps", "2048", "--set", "train.init=best", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    first, second = (json.loads((out / f"iter_{i:02d}" / "cand_00" / "result.json").read_text()) for i in (0, 1))
    assert not first["success"], "the first candidate must fall short for a warm start to happen"
    assert second["status"] == "ok", second["reason"]
    assert second["init_from"] == "iter_00/cand_00"
    assert "warm start skipped" not in (out / "iter_01" / "cand_00" / "train.log").read_text()
