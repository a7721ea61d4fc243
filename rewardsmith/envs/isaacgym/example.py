"""A VecTask-style cart-pole in plain torch: the Isaac Gym task interface, without Isaac Gym.

It keeps the buffers and methods an IsaacGymEnvs ``VecTask`` has (``obs_buf``, ``rew_buf``,
``reset_buf``, ``progress_buf``, ``extras``, ``step``, ``reset_idx``, ``compute_observations``,
``compute_reward``) and follows its order of work inside ``step``: apply actions, simulate,
then ``post_physics_step`` (count progress, reset the envs flagged last step, observe, compute
the task's own reward and the reset flags). It is the test double for
:class:`~rewardsmith.envs.isaacgym.vectask.VecTaskAdapter`, and an example of what a factory for the
``isaacgym`` backend returns.

The state a reward may read lives in env attributes, as in IsaacGymEnvs' Cartpole:
``dof_pos`` and ``dof_vel`` of shape ``(num_envs, 2)`` (cart, pole).
"""

from __future__ import annotations

import math

import torch


class CartpoleVecTask:
    """Continuous-force cart-pole; episodes end when the cart leaves +-3 m or the pole passes 90 degrees."""

    rewardsmith_variables = {
        "dof_pos": "cart position (m, 0 is the centre) and pole angle (rad, 0 is upright), per env",
        "dof_vel": "cart velocity (m/s) and pole angular velocity (rad/s), per env",
    }
    rewardsmith_summary = ("a pole hinged on a cart on a 6 m track (VecTask-style, after IsaacGymEnvs' "
                           "Cartpole); the agent pushes the cart with a continuous force")

    gravity, masscart, masspole, length, max_push_effort, dt = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
    reset_dist = 3.0

    def __init__(self, num_envs: int, device: str = "cpu", seed: int = 0, max_episode_length: int = 500):
        self.num_envs = num_envs
        self.num_obs, self.num_actions = 4, 1
        self.device = torch.device(device)
        self.rl_device = self.device
        self.max_episode_length = max_episode_length
        self.clip_actions, self.clip_obs = 1.0, 5.0
        self.generator = torch.Generator(device=self.device).manual_seed(seed)
        z = lambda *s, dtype=torch.float32: torch.zeros(*s, device=self.device, dtype=dtype)  # noqa: E731
        self.obs_buf = z(num_envs, self.num_obs)
        self.rew_buf = z(num_envs)
        self.reset_buf = torch.ones(num_envs, device=self.device, dtype=torch.long)
        self.progress_buf = z(num_envs, dtype=torch.long)
        self.timeout_buf = z(num_envs, dtype=torch.long)
        self.extras: dict = {}
        self.dof_pos = z(num_envs, 2)
        self.dof_vel = z(num_envs, 2)
        self.actions = z(num_envs, self.num_actions)
        self.obs_dict: dict[str, torch.Tensor] = {}

    # ---- the VecTask interface -------------------------------------------------------------
    def reset_idx(self, env_ids: torch.Tensor) -> None:
        n = len(env_ids)
        rand = lambda: torch.rand(n, 2, generator=self.generator, device=self.device)  # noqa: E731
        self.dof_pos[env_ids] = 0.2 * (rand() - 0.5)
        self.dof_vel[env_ids] = 0.5 * (rand() - 0.5)
        self.reset_buf[env_ids] = 0
        self.progress_buf[env_ids] = 0

    def compute_observations(self) -> torch.Tensor:
        self.obs_buf[:, 0], self.obs_buf[:, 1] = self.dof_pos[:, 0], self.dof_vel[:, 0]
        self.obs_buf[:, 2], self.obs_buf[:, 3] = self.dof_pos[:, 1], self.dof_vel[:, 1]
        return self.obs_buf

    def compute_reward(self) -> None:
        cart_pos, pole_angle = self.dof_pos[:, 0], self.dof_pos[:, 1]
        self.rew_buf[:] = 1.0 - pole_angle.square() - 0.01 * self.dof_vel[:, 1].abs()
        fell = (cart_pos.abs() > self.reset_dist) | (pole_angle.abs() > math.pi / 2)
        timeout = self.progress_buf >= self.max_episode_length - 1
        self.reset_buf[:] = (fell | timeout).long()

    def pre_physics_step(self, actions: torch.Tensor) -> None:
        self.actions = actions.clone()

    def simulate(self) -> None:
        force = self.actions[:, 0] * self.max_push_effort
        x_dot, theta, theta_dot = self.dof_vel[:, 0], self.dof_pos[:, 1], self.dof_vel[:, 1]
        total = self.masscart + self.masspole
        pml = self.masspole * self.length
        cos, sin = torch.cos(theta), torch.sin(theta)
        temp = (force + pml * theta_dot.square() * sin) / total
        theta_acc = (self.gravity * sin - cos * temp) / (self.length * (4 / 3 - self.masspole * cos.square() / total))
        x_acc = temp - pml * theta_acc * cos / total
        self.dof_pos[:, 0] += self.dt * x_dot
        self.dof_pos[:, 1] += self.dt * theta_dot
        self.dof_vel[:, 0] += self.dt * x_acc
        self.dof_vel[:, 1] += self.dt * theta_acc

    def post_physics_step(self) -> None:
        self.progress_buf += 1
        env_ids = self.reset_buf.nonzero(as_tuple=False).squeeze(-1)
        if len(env_ids) > 0:
            self.reset_idx(env_ids)
        self.compute_observations()
        self.compute_reward()

    def step(self, actions: torch.Tensor):
        actions = torch.clamp(actions, -self.clip_actions, self.clip_actions)
        self.pre_physics_step(actions)
        self.simulate()
        self.post_physics_step()
        self.timeout_buf = (self.progress_buf >= self.max_episode_length - 1).long()
        self.extras["time_outs"] = self.timeout_buf
        self.obs_dict["obs"] = torch.clamp(self.obs_buf, -self.clip_obs, self.clip_obs)
        return self.obs_dict, self.rew_buf, self.reset_buf, self.extras

    def reset(self):
        self.obs_dict["obs"] = torch.clamp(self.obs_buf, -self.clip_obs, self.clip_obs)
        return self.obs_dict


def make_cartpole(num_envs: int, device: str = "cpu", seed: int = 0, max_episode_steps: int | None = None,
                  **kwargs) -> CartpoleVecTask:
    """Factory in the form the ``isaacgym`` backend calls (``isaacgym:MODULE:FUNCTION``)."""
    return CartpoleVecTask(num_envs, device, seed, max_episode_length=max_episode_steps or 500, **kwargs)
