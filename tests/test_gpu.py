"""The same code path on CUDA (runs only where a GPU is present)."""

import pytest
import torch
from conftest import GOOD_CARTPOLE_REWARD

from rewardsmith import envs
from rewardsmith.expressions import FitnessProgram
from rewardsmith.reward import RewardFunction
from rewardsmith.train.config import PPOConfig
from rewardsmith.train.evaluate import evaluate_policy
from rewardsmith.train.ppo import train

pytestmark = [pytest.mark.gpu, pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]


@pytest.mark.parametrize("name", envs.known_envs())
def test_envs_step_on_cuda(name):
    env = envs.make(name, num_envs=1024, device="cuda")
    spec = env.action_spec
    action = (torch.zeros(1024, dtype=torch.long, device="cuda") if spec.kind == "discrete"
              else torch.zeros(1024, spec.size, device="cuda"))
    step = env.step(action)
    assert step.obs.device.type == "cuda"
    assert all(v.device.type == "cuda" for v in step.variables.values())


def test_train_cartpole_on_cuda():
    env = envs.make("torch:CartPole", num_envs=1024, device="cuda")
    desc = env.description
    reward = RewardFunction(GOOD_CARTPOLE_REWARD, desc.reward_arguments)
    program = FitnessProgram("sum(abs(pole_angle) < 0.2095) / max_episode_steps", set(desc.variable_names))
    eval_env = envs.make("torch:CartPole", num_envs=16, device="cuda", seed=1)
    out = train(env, lambda v, a: reward.checked_call(v, a, 1024), PPOConfig(total_timesteps=300_000), program,
                evaluate=lambda p: evaluate_policy(p, eval_env, program, 0.95).fitness, success_threshold=0.95)
    assert out.log.device.startswith("cuda")
    assert next(out.policy.parameters()).device.type == "cuda"
    assert evaluate_policy(out.policy, eval_env, program, 0.95).fitness > 0.5
