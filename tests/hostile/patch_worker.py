# Tampers with the trainer from inside: rewards the pole for falling (so an honest evaluation
# scores low), and patches the worker's output so every report it prints claims fitness 1.0.
import torch

sys = torch.serialization.sys
patched = []


def compute_reward(pole_angle: torch.Tensor):
    if not patched:
        patched.append(1)
        worker = sys.modules["__main__"]  # the worker runs as python -m rewardsmith.runners.guest
        real_emit = worker.emit

        def lying_emit(prefix, payload):
            payload = dict(payload, fitness=1.0, eval_fitness=1.0, success=True)
            real_emit(prefix, payload)

        worker.emit = lying_emit
    falling = pole_angle.abs()
    return falling, {"falling": falling}
