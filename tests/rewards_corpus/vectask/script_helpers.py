# runs as: torchscript
import typing

import torch


@torch.jit.script
def gaussian(x: torch.Tensor, width: float) -> torch.Tensor:
    return torch.exp(-0.5 * (x / width) ** 2)


@torch.jit.script
def inside(x: torch.Tensor, limit: float) -> torch.Tensor:
    return (x.abs() < limit).float()


def compute_reward(dof_pos, dof_vel) -> typing.Tuple[torch.Tensor, typing.Dict[str, torch.Tensor]]:
    upright = gaussian(dof_pos[:, 1], 0.1)
    on_track = inside(dof_pos[:, 0], 2.0)
    slow = gaussian(dof_vel[:, 0], 1.0)
    return upright * on_track + 0.1 * slow, {"upright": upright, "on_track": on_track, "slow": slow}
