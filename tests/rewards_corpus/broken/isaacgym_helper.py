# static: 'quat_rotate' is not defined (isaacgym.torch_utils is not available here
@torch.jit.script
def compute_reward(pole_angle: torch.Tensor, cart_pos: torch.Tensor) -> Tuple[torch.Tensor, Dict[str, torch.Tensor]]:
    up = quat_rotate(pole_angle, cart_pos)
    return up, {"up": up}
