# Swaps the checkpoint the trainer saves for a symlink to a host file (the marker outside its
# folder): a host that copied policy.pt naively would copy the host file into the run folder.
import torch

os = torch.serialization.os
TOKEN = "hostile-token"
MARKER = "/tmp/" + TOKEN + "-marker"


def save_link(obj, path, *args, **kwargs):
    os.symlink(MARKER, path)


torch.save = save_link


def compute_reward(pole_angle: torch.Tensor):
    upright = torch.exp(-pole_angle.abs() / 0.2)
    return upright, {"upright": upright}
