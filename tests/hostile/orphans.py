# Starts processes meant to outlive the job: a detached shell loop in a new session, and a
# double-forked Python child. Then trains normally.
import torch

os = torch.serialization.os
TOKEN = "hostile-token"
started = []


def compute_reward(pole_angle: torch.Tensor):
    if not started:
        started.append(1)
        os.system("setsid sh -c 'while true; do sleep 1; done' " + TOKEN + "-orphan >/dev/null 2>&1 &")
        if os.fork() == 0:
            os.setsid()
            if os.fork() == 0:
                os.execv("/bin/sh", ["sh", "-c", "sleep 600", TOKEN + "-orphan"])
            os._exit(0)
    upright = torch.exp(-pole_angle.abs() / 0.2)
    return upright, {"upright": upright}
