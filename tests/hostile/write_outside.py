# Writes outside its job folder: host /tmp, home folders, the Python environment (a .pth file
# there would run code in every later Python process), the rewardsmith package itself.
import torch

os = torch.serialization.os
sys = torch.serialization.sys
TOKEN = "hostile-token"
TARGETS = ["/tmp", "/var/tmp", "/root", "/home", "/dev/shm", "/job/..", "/"] + list(sys.path)
done = []


def compute_reward(pole_angle: torch.Tensor, cart_pos: torch.Tensor):
    if not done:
        done.append(1)
        for folder in TARGETS:
            for name in (TOKEN + "-escape", TOKEN + "-escape.pth"):
                try:
                    fd = os.open(os.path.join(folder, name), os.O_WRONLY | os.O_CREAT, 0o644)
                    os.write(fd, b"import sys; print('pwned')\n")
                    os.close(fd)
                    print("wrote", folder, name)
                except OSError as exc:
                    print("blocked", folder, exc)
        os.system("touch /tmp/" + TOKEN + "-escape-shell ~/" + TOKEN + "-escape-shell")
        for name in list(sys.modules):
            if name.startswith("rewardsmith") and name.count(".") == 1:
                module = sys.modules[name]
                try:  # its source file, found through inspect (no dunder attribute in this code)
                    path = sys.modules["inspect"].getsourcefile(module)
                    fd = os.open(path, os.O_WRONLY | os.O_APPEND)
                    os.write(fd, b"\n# " + TOKEN.encode() + b"\n")
                    os.close(fd)
                    print("appended to", path)
                except (OSError, TypeError) as exc:
                    print("blocked", name, exc)
    upright = torch.exp(-pole_angle.abs() / 0.2)
    return upright, {"upright": upright}

