"""A run directory laid out as a solve leaves it, without training: for tests of what reads runs."""

import numpy as np
import torch

from rewardsmith.envs.torch.cartpole import CartPole
from rewardsmith.runners.protocol import TRACE_FILE as TRACE
from rewardsmith.runs import RunDir
from rewardsmith.schemas import Candidate, CandidateResult, RolloutTrace, Stats, TrainCheckpoint, TrainLog
from rewardsmith.task import load_task
from rewardsmith.video import encode_videos

# candidate index -> (status, fitness); candidate 2 failed and has no policy
CANDIDATES = {0: ("ok", 0.41), 1: ("ok", 0.93), 2: ("failed", None), 3: ("ok", 0.17)}


def _stats(x: float) -> Stats:
    return Stats(mean=x, std=0.1, min=x - 0.2, max=x + 0.2)


def _episode(folder, lean: float, steps: int = 12):
    """A real CartPole drawing of a pole tipping over, encoded as the training job's would be."""
    env = CartPole(1)
    frames, angles = [], []
    for t in range(steps):
        angle = lean * t / steps
        variables = {"cart_pos": torch.tensor([0.1 * t]), "cart_vel": torch.zeros(1),
                     "pole_angle": torch.tensor([angle]), "pole_vel": torch.zeros(1)}
        frames.append(env.render(0, variables))
        angles.append(angle)
    encode_videos(np.stack(frames), 10.0, folder)
    upright = [float(np.exp(-abs(a) / 0.2)) for a in angles[1:]]
    trace = RolloutTrace(steps=steps - 1, dt=0.02, fps=10.0, frame_steps=list(range(steps)), reward=upright,
                         components={"upright": upright}, variables={"pole_angle": angles[1:]},
                         action=[[1.0]] * (steps - 1), terminated=False, episode_return=sum(upright))
    (folder / TRACE).write_text(trace.model_dump_json())


def make_run(path):
    task = load_task("tasks/cartpole.yaml")
    run = RunDir.create(path, task, {"feedback": "human"})
    proposals = [Candidate(iteration=0, index=i, code=f"# reward of candidate {i}\nimport torch\n") for i in CANDIDATES]
    run.save_proposals(0, proposals)
    for c in proposals:
        status, fitness = CANDIDATES[c.index]
        train = None
        if status == "ok":
            checkpoints = [TrainCheckpoint(step=1000 * (k + 1), wall_s=k, reward=_stats(0.5),
                                           components={"upright": _stats(0.2 * k + c.index / 10),
                                                       "centered": _stats(0.9)}, episodes=4)
                           for k in range(4)]
            train = TrainLog(checkpoints=checkpoints, env_steps=4000, wall_s=3.0, steps_per_s=1000.0)
            _episode(run.candidate_dir(0, c.index), lean=0.05 * (c.index + 1))
        run.save_result(CandidateResult(iteration=0, index=c.index, status=status, fitness=fitness,
                                        reason=None if status == "ok" else "exited with code 1",
                                        reward_file=f"iter_00/cand_{c.index:02d}/reward.py", code=c.code, train=train))
    return run
