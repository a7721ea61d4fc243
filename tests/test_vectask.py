"""The Isaac-Gym VecTask adapter, against a torch task with the same interface."""

import math

import pytest
import torch
from conftest import run_cli

from rewardsmith import envs
from rewardsmith.envs.isaacgym.example import CartpoleVecTask
from rewardsmith.envs.isaacgym.vectask import VecTaskAdapter
from rewardsmith.errors import RewardsmithError
from rewardsmith.reward import RewardFunction

EUREKA_STYLE_REWARD = '''
import torch
from typing import Dict, Tuple

def compute_reward(dof_pos: torch.Tensor, dof_vel: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    pole_angle = dof_pos[:, 1]
    upright = 1.0 - pole_angle * pole_angle
    calm = -0.01 * torch.abs(dof_vel[:, 1])
    return upright + calm, {"upright": upright, "calm": calm}
'''


def test_description_names_task_attributes():
    env = VecTaskAdapter(CartpoleVecTask(num_envs=3), env_id="isaacgym:cartpole")
    d = env.description
    assert d.variable_names == ["dof_pos", "dof_vel"] and d.variable("dof_pos").shape == (2,)
    assert d.action.kind == "continuous" and d.action.low == (-1.0,) and d.max_episode_steps == 500
    # without the class's own list, every float tensor attribute with a row per env is a variable
    task = CartpoleVecTask(num_envs=3)
    task.rewardsmith_variables = None
    task.pole_tip_height = torch.zeros(3)
    assert VecTaskAdapter(task).description.variable_names == ["dof_pos", "dof_vel", "pole_tip_height"]
    with pytest.raises(RewardsmithError, match="no float tensor attribute .* named root_states"):
        VecTaskAdapter(CartpoleVecTask(num_envs=3), variables=["root_states"])


def test_variables_hold_the_terminal_state_and_obs_the_next_episode():
    task = CartpoleVecTask(num_envs=4, seed=1)
    env = VecTaskAdapter(task)
    env.reset()
    push = torch.tensor([[1.0], [1.0], [-1.0], [-1.0]])
    for _ in range(200):
        step = env.step(push)
        if bool(step.terminated.any()):
            break
    done = step.terminated
    assert bool(done.any()) and not bool(step.truncated.any())
    ended = step.variables["dof_pos"][done]
    # the state that ended the episode: pole past 90 degrees or cart past 3 m
    assert bool(((ended[:, 1].abs() > math.pi / 2) | (ended[:, 0].abs() > 3.0)).all())
    assert torch.allclose(step.final_obs[done][:, 2], ended[:, 1].clamp(-5, 5))
    # the returned observation already starts the next episode, and the task knows it was reset
    assert bool((step.obs[done].abs() <= 0.25).all())
    assert bool((task.progress_buf[done] == 0).all()) and bool((task.reset_buf == 0).all())
    # variables are copies: the reset did not overwrite what the reward saw
    assert not torch.equal(step.variables["dof_pos"][done], task.dof_pos[done])


def test_time_limit_is_truncation_not_termination():
    env = VecTaskAdapter(CartpoleVecTask(num_envs=2, max_episode_length=10))
    env.reset()
    flags = [env.step(torch.zeros(2, 1)) for _ in range(9)]
    assert [bool(s.truncated.all()) for s in flags] == [False] * 8 + [True]
    assert not any(bool(s.terminated.any()) for s in flags)


def test_eureka_style_reward_trains_through_the_backend():
    from rewardsmith.train.config import PPOConfig
    from rewardsmith.train.ppo import train

    env = envs.make("isaacgym:rewardsmith.envs.isaacgym.example:make_cartpole", num_envs=8, seed=0)
    reward = RewardFunction(EUREKA_STYLE_REWARD, env.description.reward_arguments)
    step = env.step(torch.zeros(8, 1))
    total, parts = reward.checked_call(step.variables, step.action, 8)
    assert total.shape == (8,) and set(parts) == {"upright", "calm"}
    out = train(env, lambda v, a: reward.checked_call(v, a, env.num_envs),
                PPOConfig(total_timesteps=2048, num_steps=32, early_stop=False, checkpoints=2))
    assert out.log.env_steps == 2048
    assert set(out.log.checkpoints[-1].components) == {"upright", "calm"}


def test_cli_describe_isaacgym_factory_and_missing_isaacgym():
    proc = run_cli("describe", "isaacgym:rewardsmith.envs.isaacgym.example:make_cartpole")
    assert proc.returncode == 0, proc.stderr
    assert "dof_pos: (num_envs, 2)" in proc.stdout and "dof_vel: (num_envs, 2)" in proc.stdout
    missing = run_cli("describe", "isaacgym:Ant")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr
    assert "needs Isaac Gym" in missing.stderr and len(missing.stderr.strip().splitlines()) <= 2
