"""Record one episode of a trained policy: frames for a video, the reward's components per step.

Runs in the training job (it needs the reward code). Frames come from the env itself:
- torch envs draw themselves (``TorchVecEnv.render``; a panel of variables when they have no drawing);
- other backends are asked for ``env.render(index)`` -> ``(H, W, 3) uint8``, as gymnasium gives
  with ``render_mode="rgb_array"``, which is requested when the env is built;
- anything else is shown as a panel of its variables.

The job writes ``rollout.json`` (a :class:`~rewardsmith.schemas.RolloutTrace`) and ``frames.npy``
(raw pixels); the host checks both and encodes the videos itself (see :mod:`rewardsmith.video`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from pathlib import Path

import numpy as np
import torch

from ..envs.canvas import FRAME_SIZE, variables_panel
from ..envs.torch.base import TorchVecEnv
from ..runners.protocol import FRAMES_FILE, TRACE_FILE
from ..schemas import RolloutTrace

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


@torch.no_grad()
def record_rollout(policy, env, reward_fn, max_frames: int = MAX_FRAMES) -> tuple[RolloutTrace, np.ndarray]:
    """Play one episode in env 0 with deterministic actions; return its trace and its frames.

    The states are kept on the env's device and the reward is called once, afterwards, on the
    whole episode as one batch (``reward_fn(variables, action)`` with ``len(action)`` = steps):
    a reward is a function of the state, so this equals calling it step by step, for a fraction
    of the cost.
    """
    limit = env.max_episode_steps
    stride = max(1, math.ceil(limit / max_frames))
    frame = frame_source(env)
    obs = env.reset()
    frames, frame_steps = [fit_frame(frame(None))], [0]
    states: list[Mapping[str, torch.Tensor]] = []
    actions: list[torch.Tensor] = []
    terminated = False
    for t in range(1, limit + 1):
        step = env.step(policy.act(obs, deterministic=True))
        # copies: a backend may refill the same buffers at the next step
        states.append({k: v[:1].clone() for k, v in step.variables.items()})
        actions.append(step.action[:1].clone())
        terminated = bool(step.terminated[0])
        done = terminated or bool(step.truncated[0])
        if t % stride == 0 or done:
            frames.append(fit_frame(frame(step.variables)))
            frame_steps.append(t)
        if done:
            break
        obs = step.obs
    variables = {name: torch.cat([s[name] for s in states]) for name in states[0]}
    action = torch.cat(actions)
    total, parts = reward_fn(variables, action)
    scalar = [v.name for v in env.description.variables if v.shape == ()]
    dt = env.description.dt
    fps = min(50.0, max(4.0, 1.0 / (dt * stride))) if dt else 25.0
    reward = total.double().cpu().tolist()
    trace = RolloutTrace(steps=len(reward), dt=dt, fps=round(fps, 3), frame_steps=frame_steps, reward=reward,
                         components={k: v.double().cpu().tolist() for k, v in parts.items()},
                         variables={k: variables[k].double().cpu().tolist() for k in scalar},
                         action=action.double().reshape(len(reward), -1).cpu().tolist(), terminated=terminated,
                         episode_return=float(sum(reward)))
    return trace, np.stack(frames)


def write_rollout(policy, task, reward_fn, device: str, folder: Path) -> RolloutTrace:
    """Record the trained policy's episode into ``folder`` (``rollout.json`` and ``frames.npy``)."""
    env = make_render_env(task, device)
    trace, frames = record_rollout(policy, env, reward_fn)
    (folder / TRACE_FILE).write_text(trace.model_dump_json())
    np.save(folder / FRAMES_FILE, frames, allow_pickle=False)
    close = getattr(env, "close", None)
    if callable(close):
        close()
    return trace
