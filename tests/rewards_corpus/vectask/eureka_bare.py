# runs as: torchscript
@torch.jit.script
def compute_reward(dof_pos: Tensor, dof_vel: Tensor) -> Tuple[Tensor, Dict[str, Tensor]]:
    pole_angle = dof_pos[:, 1]
    cart_pos = dof_pos[:, 0]
    angle_temperature = 0.25
    angle_reward = torch.exp(-torch.abs(pole_angle) / angle_temperature)
    position_reward = 1.0 - torch.clamp(torch.abs(cart_pos) / 3.0, 0.0, 1.0)
    velocity_penalty = -0.01 * torch.sum(dof_vel * dof_vel, dim=-1)
    total_reward = angle_reward + 0.5 * position_reward + velocity_penalty
    return total_reward, {"angle_reward": angle_reward, "position_reward": position_reward,
                          "velocity_penalty": velocity_penalty}
