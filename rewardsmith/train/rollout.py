"""Record one episode of a trained policy for its video: states, actions and frames.

Runs in the clean evaluation job (no reward code), so a reward cannot forge what a person or a
VLM judges; the reward's numbers per step are computed afterwards by scoring the recorded
states in the candidate's sandbox (a ``score`` job) and joined on the host (:func:`trace_of`).
Frames come from the env itself:
- torch envs draw themselves (``TorchVecEnv.render``; a panel of variables when they have no drawing);
- other backends are asked for ``env.render(index)`` -> ``(H, W, 3) uint8``, as gymnasium gives
  with ``render_mode="rgb_array"``, which is requested when the env is built;
- anything else is shown as a panel of its variables.

The job writes the episode (``video.npz``), its timing (``video.json``) and ``frames.npy`` (raw
pixels); the host checks them and encodes the videos itself (see :mod:`rewardsmith.video`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from ..envs.canvas import FRAME_SIZE, variables_panel
from ..envs.torch.base import TorchVecEnv
from ..episodes import EpisodeBatch
from ..schemas import EpisodeMeta, RolloutTrace

MAX_FRAMES = 100  # software rendering (MuJoCo with OSMesa) costs ~0.1-0.3 s a frame
ROLLOUT_SEED_OFFSET = 104_729

FrameFn = Callable[[Mapping[str, torch.Tensor] | None], np.ndarray]


def make_render_env(task, device: str):
    """A single env of the task, built so that it can produce pictures."""
    seed = task.train.seed + ROLLOUT_SEED_OFFSET
    if task.env.backend == "torch":
        return task.env.make(1, device, seed=seed)
    if task.env.backend != "gymnasium":  # a VecTask draws nothing: its frames are panels of its state
        return task.env.make(1, device, seed=seed)
    from .. import envs

    kwargs = {"render_mode": "rgb_array", **task.env.kwargs}
    return envs.make(task.env.name, 1, device=device, seed=seed, max_episode_steps=task.env.max_episode_steps,
                     variables=task.env.variables, **kwargs)


def frame_source(env) -> FrameFn:
    """How to get a picture of env 0 after a step (given that step's variables)."""
    if isinstance(env, TorchVecEnv):
        return lambda variables: env.render(0, variables)
    render = getattr(env, "render", None)
    if callable(render):
        return lambda variables: np.asarray(render(0))
    description = env.description
    bounds = {v.name: (v.low, v.high) for v in description.variables}

    def panel(variables):
        values: dict[str, float] = {}
        for name, t in (variables or {}).items():
            row = t[0].reshape(-1)
            if row.numel() == 1:
                values[name] = float(row[0])
            elif row.numel() <= 4:  # a short vector: one bar per entry
                values.update({f"{name}[{i}]": float(x) for i, x in enumerate(row.tolist())})
        return variables_panel(values, {**bounds, **{k: bounds.get(k.split("[")[0], (None, None)) for k in values}},
                               title=description.id)

    return panel


def fit_frame(frame: np.ndarray, box: tuple[int, int] = FRAME_SIZE) -> np.ndarray:
    """``frame`` as RGB ``uint8`` scaled to fit ``box`` (width, height), sides multiples of 16."""
    frame = np.asarray(frame)
    if frame.ndim != 3 or frame.shape[2] not in (3, 4):
        raise ValueError(f"a frame must be (height, width, 3), got shape {frame.shape}")
    frame = frame[..., :3]
    if frame.dtype != np.uint8:
        frame = np.clip(frame, 0, 255).astype(np.uint8)
    h, w = frame.shape[:2]
    scale = min(box[0] / w, box[1] / h)
    size = (max(16, int(w * scale) // 16 * 16), max(16, int(h * scale) // 16 * 16))
    if size == (w, h):
        return frame
    from PIL import Image

    return np.asarray(Image.fromarray(frame).resize(size, Image.Resampling.BILINEAR))


@dataclass(frozen=True)
class VideoEpisode:
    """One episode of a policy in an env that draws itself: its states and actions (one
    :class:`~rewardsmith.episodes.EpisodeBatch` of one episode), frames and timing. Recorded by
    the clean evaluation job; the reward per step is added on the host from a ``score`` job."""

    episode: EpisodeBatch
    frames: np.ndarray
    frame_steps: list[int]
    fps: float
    dt: float | None
    terminated: bool

    def info(self) -> dict:
        return {"frame_steps": self.frame_steps, "fps": self.fps, "dt": self.dt, "terminated": self.terminated}


class VideoRecorder:
    """Records the video of env 0's first episode, step by step: its states, actions and frames.
    Call :meth:`start` once the envs are reset, then once after every step.

    :func:`play_video_episode` plays that episode in an env of its own; a torch env draws any of
    its envs, so the clean evaluation records the video of its own first episode as it plays it
    (one episode fewer to play, and the video shows an episode the fitness counted)."""

    def __init__(self, env, max_frames: int = MAX_FRAMES):
        self.env, self.frame = env, frame_source(env)
        self.stride = max(1, math.ceil(env.max_episode_steps / max_frames))
        self.frames: list[np.ndarray] = []
        self.frame_steps: list[int] = []
        self.states: list[Mapping[str, torch.Tensor]] = []
        self.actions: list[torch.Tensor] = []
        self.done = self.terminated = False

    def start(self) -> None:
        self.frames, self.frame_steps = [fit_frame(self.frame(None))], [0]

    def __call__(self, step, active=None) -> None:
        if self.done:
            return
        # copies: a backend may refill the same buffers at the next step
        self.states.append({k: v[:1].clone() for k, v in step.variables.items()})
        self.actions.append(step.action[:1].clone())
        t = len(self.actions)
        self.terminated = bool(step.terminated[0])
        self.done = self.terminated or bool(step.truncated[0])
        if t % self.stride == 0 or self.done:
            self.frames.append(fit_frame(self.frame(step.variables)))
            self.frame_steps.append(t)

    def video(self, fitness: float) -> VideoEpisode:
        """The recorded episode, with its fitness (``0.0`` if not finite)."""
        variables = {name: torch.cat([s[name] for s in self.states]).cpu().float().numpy() for name in self.states[0]}
        action = torch.cat(self.actions).cpu().float().numpy()
        fitness = fitness if math.isfinite(fitness) else 0.0
        episode = EpisodeBatch(variables, action, [EpisodeMeta(source="video", fitness=fitness,
                                                               length=len(self.actions))])
        dt = self.env.description.dt
        fps = min(50.0, max(4.0, 1.0 / (dt * self.stride))) if dt else 25.0
        return VideoEpisode(episode, np.stack(self.frames), self.frame_steps, round(fps, 3), dt, self.terminated)


@torch.inference_mode()
def play_video_episode(policy, env, program=None, max_frames: int = MAX_FRAMES) -> VideoEpisode:
    """Play one episode in env 0 with deterministic actions, keeping its states, actions and
    frames (and its fitness, given the task's fitness ``program``)."""
    from ..fitness import FitnessTracker

    d = env.description
    tracker = FitnessTracker(program, 1, env.max_episode_steps, d.terminations, d.variable_names, env.device,
                             env.dtype) if program is not None else None
    obs = env.reset()
    recorder = VideoRecorder(env, max_frames=max_frames)
    recorder.start()
    for _ in range(env.max_episode_steps):
        step = env.step(policy.act(obs, deterministic=True))
        recorder(step)
        if tracker is not None:
            tracker.update({k: v[:1] for k, v in step.variables.items()}, step.action[:1], step.terminated[:1],
                           step.truncated[:1])
        if recorder.done:
            break
        obs = step.obs
    return recorder.video(float(tracker.first_fitness[0]) if tracker is not None else 0.0)


def trace_of(video: VideoEpisode, reward: Sequence[float], components: Mapping[str, Sequence[float]],
             scalar: Sequence[str]) -> RolloutTrace:
    """The trace shown beside the video: the trusted episode's states and actions, with the
    reward's own numbers per step (``reward``, ``components``) beside them."""
    batch = video.episode
    reward = [float(r) for r in reward]
    return RolloutTrace(steps=batch.steps, dt=video.dt, fps=video.fps, frame_steps=video.frame_steps, reward=reward,
                        components={k: [float(x) for x in v] for k, v in components.items()},
                        variables={k: batch.variables[k].astype(np.float64).reshape(-1).tolist()
                                   for k in scalar if k in batch.variables},
                        action=batch.action.astype(np.float64).reshape(batch.steps, -1).tolist(),
                        terminated=video.terminated, episode_return=float(sum(reward)))


def record_rollout(policy, env, reward_fn, max_frames: int = MAX_FRAMES) -> tuple[RolloutTrace, np.ndarray]:
    """Play one episode in env 0 with deterministic actions; return its trace and its frames,
    with ``reward_fn(variables, action)`` called once on the whole episode as one batch (a reward
    is a function of the state, so this equals calling it step by step)."""
    video = play_video_episode(policy, env, max_frames=max_frames)
    batch = video.episode
    variables = {k: torch.as_tensor(v, device=env.device) for k, v in batch.variables.items()}
    total, parts = reward_fn(variables, torch.as_tensor(batch.action, device=env.device))
    scalar = [v.name for v in env.description.variables if v.shape == ()]
    trace = trace_of(video, total.double().cpu().tolist(), {k: v.double().cpu().tolist() for k, v in parts.items()},
                     scalar)
    return trace, video.frames
