"""The trainer's own optimizer against torch's, and the policy's parameters after it."""

import math

import torch

from rewardsmith.envs.description import ActionSpec
from rewardsmith.train.optim import Adam
from rewardsmith.train.policy import ActorCritic


def _loss(policy: ActorCritic, obs, action, target, scale):
    logp, entropy = policy.evaluate(policy.normalize(obs), action)
    return scale * (-(logp * target).mean() + (policy.value(obs) - target).square().mean() - 0.01 * entropy.mean())


def test_flat_adam_matches_torch_adam_with_clipping_step_for_step():
    torch.manual_seed(0)
    spec = ActionSpec(kind="continuous", shape=(2,), low=(-1.0, -1.0), high=(1.0, 1.0))
    ours, theirs = ActorCritic(3, spec), ActorCritic(3, spec)
    theirs.load_state_dict(ours.state_dict())
    initial = {name: p.detach().clone() for name, p in ours.named_parameters()}
    mine = Adam(ours.parameters(), lr=3e-3, eps=1e-5)
    reference = torch.optim.Adam(theirs.parameters(), lr=3e-3, eps=1e-5)
    norms = []
    for step in range(25):
        obs, action, target = torch.randn(64, 3) * 3, torch.randn(64, 2), torch.randn(64)
        scale = 10.0 if step % 2 else 0.001
        mine.zero_grad()
        _loss(ours, obs, action, target, scale).backward()
        norms.append(float(mine.clip_grad_norm(0.5)))
        mine.step()
        reference.zero_grad()
        _loss(theirs, obs, action, target, scale).backward()
        torch.nn.utils.clip_grad_norm_(theirs.parameters(), 0.5)
        reference.step()
    assert max(norms) > 0.5 > min(norms)  # clipping both did and did not bite
    for (name, a), b in zip(ours.named_parameters(), theirs.parameters()):
        assert torch.allclose(a, b, atol=1e-6), name
        assert not torch.allclose(a, initial[name], atol=1e-4), name  # it did train
    # the parameters are still views of the optimizer's buffer after loading a checkpoint
    ours.load_state_dict(theirs.state_dict())
    assert torch.equal(mine.flat, torch.cat([p.detach().reshape(-1) for p in theirs.parameters()]))


def test_ppo_logs_its_own_diagnostics_at_each_checkpoint():
    """Approximate KL, clip fraction, explained variance and the losses, as CleanRL logs them, so a
    reward that trains badly can be told from PPO trouble."""
    from rewardsmith import envs
    from rewardsmith.train.config import PPOConfig
    from rewardsmith.train.ppo import DIAGNOSTICS, train

    env = envs.make("torch:CartPole", num_envs=16, seed=0)

    def upright(variables, action):
        r = torch.exp(-variables["pole_angle"].abs() / 0.2)
        return r, {"upright": r}

    out = train(env, upright, PPOConfig(total_timesteps=4096, num_steps=32, early_stop=False, checkpoints=2))
    assert len(out.log.checkpoints) == 2
    for c in out.log.checkpoints:
        d = c.diagnostics
        assert set(d) == set(DIAGNOSTICS) and all(math.isfinite(v) for v in d.values())
        assert 0 <= d["clip_fraction"] <= 1 and d["approx_kl"] >= 0 and d["explained_variance"] <= 1
        assert d["value_loss"] > 0 and d["entropy"] > 0  # a two-action softmax keeps some entropy
    # the value function learns: it explains more of the returns at the end than at the start
    assert out.log.checkpoints[-1].diagnostics["explained_variance"] > out.log.checkpoints[0].diagnostics[
        "explained_variance"]
