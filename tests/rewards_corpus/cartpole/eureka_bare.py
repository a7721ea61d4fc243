# runs as: torchscript
@torch.jit.script
def compute_reward(pole_angle: Tensor, cart_pos: Tensor, cart_vel: Tensor) -> Tuple[Tensor, Dict[str, Tensor]]:
    angle_temperature = 0.25
    angle_reward = torch.exp(-torch.abs(pole_angle) / angle_temperature)
    position_reward = 1.0 - torch.clamp(torch.abs(cart_pos) / 2.4, 0.0, 1.0)
    velocity_penalty = -0.01 * cart_vel * cart_vel
    total_reward = angle_reward + 0.5 * position_reward + velocity_penalty
    return total_reward, {"angle_reward": angle_reward, "position_reward": position_reward,
                          "velocity_penalty": velocity_penalty}
