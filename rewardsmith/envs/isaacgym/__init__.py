"""The ``isaacgym`` backend: Isaac-Gym-style ``VecTask`` envs (IsaacGymEnvs tasks, or any factory
of a task object with that tensor API); see :mod:`.vectask`. :mod:`.example` is a VecTask
written in plain torch.
"""

from .vectask import IsaacGymBackend, VecTaskAdapter

__all__ = ["IsaacGymBackend", "VecTaskAdapter"]
