# Floods its output: 40 MB of lines, one 8 MB line without a newline, fake result lines.
import torch

sys = torch.serialization.sys
flooded = []


def compute_reward(pole_angle: torch.Tensor):
    if not flooded:
        flooded.append(1)
        line = "x" * 4000 + "\n"
        for _ in range(10000):
            sys.stdout.write(line)
        sys.stdout.write('@@result {"fitness": 1.0}' + "y" * 8_000_000)
        sys.stdout.write("\n")
        sys.stdout.flush()
    upright = torch.exp(-pole_angle.abs() / 0.2)
    return upright, {"upright": upright}
