"""Frames of envs, the recorded episode of a policy, and the videos made from it."""

import io
import json

import gymnasium as gym
import numpy as np
import pytest
import torch

from rewardsmith.envs.description import ActionSpec, EnvDescription, StateVar
from rewardsmith.envs.torch.base import TorchVecEnv
from rewardsmith.envs.torch.cartpole import CartPole
from rewardsmith.reward import RewardFunction
from rewardsmith.runners.protocol import FRAMES_FILE as FRAMES
from rewardsmith.runners.protocol import TRACE_FILE as TRACE
from rewardsmith.runners.protocol import VIDEO_FILE as VIDEO
from rewardsmith.runners.protocol import VIDEO_INFO_FILE as VIDEO_INFO
from rewardsmith.schemas import RolloutTrace
from rewardsmith.train.config import PPOConfig
from rewardsmith.train.policy import build_policy
from rewardsmith.train.rollout import MAX_FRAMES, fit_frame, frame_source, record_rollout
from rewardsmith.video import GIF, MP4, encode_videos, load_frames, read_gif

ORANGE = np.array([202, 152, 101])


def _cartpole_variables(angle: float, x: float = 0.0) -> dict:
    return {"cart_pos": torch.tensor([x]), "cart_vel": torch.zeros(1), "pole_angle": torch.tensor([angle]),
            "pole_vel": torch.zeros(1)}


def _pole_columns(frame: np.ndarray) -> np.ndarray:
    mask = np.abs(frame.astype(int) - ORANGE).sum(-1) < 30
    return np.nonzero(mask)[1]


def test_cartpole_draws_the_pole_where_it_leans():
    env = CartPole(1)
    right = env.render(0, _cartpole_variables(0.3))
    left = env.render(0, _cartpole_variables(-0.3))
    assert right.shape == (240, 320, 3) and right.dtype == np.uint8
    assert _pole_columns(right).mean() > 164 and _pole_columns(left).mean() < 156  # the cart is at 160
    moved = env.render(0, _cartpole_variables(0.0, x=2.0))
    assert _pole_columns(moved).mean() > 160 + 50  # the cart (and pole) moved right


@pytest.mark.parametrize("name", ["torch:CartPole", "torch:Pendulum", "torch:Acrobot", "torch:MountainCarContinuous",
                                  "torch:Reacher"])
def test_the_builtin_torch_envs_draw_themselves(name):
    from rewardsmith import envs

    env = envs.make(name, 2, seed=1)
    assert type(env).draw is not TorchVecEnv.draw
    spec = env.action_spec
    frames = []
    for _ in range(3):
        action = torch.ones(2, dtype=torch.long) if spec.kind == "discrete" else torch.ones(2, spec.size)
        for _ in range(5):
            step = env.step(action)
        frames.append(env.render(0, step.variables))
    assert all(f.shape == (240, 320, 3) and f.dtype == np.uint8 for f in frames)
    assert not np.array_equal(frames[0], frames[-1])  # the picture follows the state


class Dial(TorchVecEnv):
    """A toy env without a drawing: it gets the panel of its variables."""

    description = EnvDescription(
        id="torch:Dial", summary="a dial", max_episode_steps=10,
        variables=(StateVar(name="angle", description="angle", low=-1.0, high=1.0),),
        action=ActionSpec(kind="continuous", shape=(1,), low=(-1.0,), high=(1.0,)))

    def _sample_initial(self, n):
        return torch.zeros(n, 1)

    def _advance(self, state, action):
        return state + action

    def _observe(self, state):
        return state

    def _variables(self, state):
        return {"angle": state[:, 0]}


def test_envs_without_a_drawing_show_their_variables():
    env = Dial(1)
    low = env.render(0, {"angle": torch.tensor([-0.9])})
    high = env.render(0, {"angle": torch.tensor([0.9])})
    assert low.shape == (240, 320, 3) and (low < 250).any()
    assert not np.array_equal(low, high)


def test_rgb_array_frames_from_gymnasium_are_used_and_fitted():
    class GymFrames:  # what an env backend offers: render(index) -> (H, W, 3) uint8
        def __init__(self):
            self.env = gym.make("CartPole-v1", render_mode="rgb_array")
            self.env.reset(seed=0)

        def render(self, index):
            return self.env.render()

    frame = fit_frame(frame_source(GymFrames())(None))
    assert frame.dtype == np.uint8 and frame.shape[2] == 3
    assert frame.shape[1] == 320 and frame.shape[0] % 16 == 0 and frame.shape[0] <= 240  # 600x400 scaled
    assert fit_frame(np.zeros((100, 200, 4), np.float32)).shape == (160, 320, 3)


def test_gymnasium_envs_are_recorded_with_their_own_frames():
    from rewardsmith.task import TaskSpec
    from rewardsmith.train.rollout import make_render_env

    task = TaskSpec.model_validate({
        "name": "gym-cartpole", "description": "balance",
        "env": {"backend": "gymnasium", "id": "CartPole-v1", "num_envs": 2, "max_episode_steps": 60},
        "fitness": {"expression": "mean(abs(pole_angle) < 0.2)", "success_threshold": 0.9}})
    env = make_render_env(task, "cpu")
    policy = build_policy(env.obs_dim, env.action_spec, PPOConfig())
    reward = RewardFunction(REWARD, env.description.reward_arguments)
    trace, frames = record_rollout(policy, env, lambda v, a: reward.checked_call(v, a, len(a)))
    env.close()
    assert frames.shape[1:] == (208, 320, 3)  # gymnasium's 600x400 picture, scaled (a panel would be 240 high)
    assert len(frames) == len(trace.frame_steps) and set(trace.components) == {"upright", "centered"}
    angle = np.array(trace.variables["pole_angle"])  # each step's own state, scored by the reward
    assert trace.steps > 1 and len(set(angle.tolist())) > 1
    np.testing.assert_allclose(trace.components["upright"], np.exp(-np.abs(angle) / 0.2), rtol=1e-5)


REWARD = """
import torch
def compute_reward(pole_angle, cart_pos):
    upright = torch.exp(-pole_angle.abs() / 0.2)
    centered = torch.exp(-cart_pos.abs())
    return upright * centered, {"upright": upright, "centered": centered}
"""


def test_record_rollout_keeps_the_episode_and_the_reward_components():
    env = CartPole(1, seed=3)
    policy = build_policy(env.obs_dim, env.action_spec, PPOConfig())
    reward = RewardFunction(REWARD, env.description.reward_arguments)
    trace, frames = record_rollout(policy, env, lambda v, a: reward.checked_call(v, a, len(a)))
    assert 1 <= trace.steps <= 500 and len(trace.reward) == trace.steps
    assert set(trace.components) == {"upright", "centered"}
    assert all(len(v) == trace.steps for v in [*trace.components.values(), *trace.variables.values(), trace.action])
    total = np.array(trace.components["upright"]) * np.array(trace.components["centered"])
    np.testing.assert_allclose(trace.reward, total, rtol=1e-5)
    # the reward, called once on the whole episode, scored each step's own state
    angle = np.array(trace.variables["pole_angle"])
    assert len(set(angle.tolist())) > 1
    np.testing.assert_allclose(trace.components["upright"], np.exp(-np.abs(angle) / 0.2), rtol=1e-5)
    assert trace.frame_steps[0] == 0 and trace.frame_steps[-1] == trace.steps
    assert trace.frame_steps == sorted(set(trace.frame_steps))
    assert frames.shape == (len(trace.frame_steps), 240, 320, 3) and len(frames) <= MAX_FRAMES + 2
    # an untrained policy lets the pole fall: the episode ends by termination, before the time limit
    assert trace.terminated == (trace.steps < 500)
    assert trace.fps == pytest.approx(1 / (0.02 * 5))  # 500 steps over at most 100 frames: every 5th step


def test_videos_round_trip_with_every_frame(tmp_path):
    frames = np.stack([CartPole(1).render(0, _cartpole_variables(a)) for a in (0.0, 0.0, 0.0, 0.1, 0.2, 0.2)])
    encode_videos(frames, 12.5, tmp_path)
    back, fps = read_gif(tmp_path / GIF)
    assert len(back) == 6 and fps == pytest.approx(12.5)  # identical frames were merged, then expanded
    assert np.abs(back[4].astype(int) - frames[4]).mean() < 8
    import imageio.v2 as imageio

    with imageio.get_reader(tmp_path / MP4, format="FFMPEG") as reader:
        assert reader.count_frames() == 6


def _npy(array) -> bytes:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=True)
    return buf.getvalue()


def test_frames_from_a_job_are_checked():
    ok = np.zeros((2, 32, 32, 3), np.uint8)
    assert load_frames(_npy(ok)).shape == ok.shape
    for bad in (ok.astype(np.float32), ok[..., :2], np.zeros((1, 8, 8, 3), np.uint8),
                np.array([{"a": 1}], dtype=object)):
        with pytest.raises(ValueError):
            load_frames(_npy(bad))


def _video_episode(folder, steps=3, frames=4):
    from rewardsmith.episodes import EpisodeBatch
    from rewardsmith.schemas import EpisodeMeta

    angle = np.linspace(0.0, 0.2, steps).astype(np.float32)
    variables = {"cart_pos": np.zeros(steps, np.float32), "cart_vel": np.zeros(steps, np.float32),
                 "pole_angle": angle, "pole_vel": np.zeros(steps, np.float32)}
    batch = EpisodeBatch(variables, np.ones(steps, np.float32),
                         [EpisodeMeta(source="video", fitness=1.0, length=steps)])
    folder.mkdir(parents=True, exist_ok=True)
    (folder / VIDEO).write_bytes(batch.to_bytes())
    (folder / VIDEO_INFO).write_text(json.dumps({"frame_steps": list(range(frames)), "fps": 10, "dt": 0.02,
                                                 "terminated": False}))
    np.save(folder / FRAMES, np.zeros((frames, 32, 32, 3), np.uint8))
    return angle


def test_the_video_comes_from_the_evaluation_and_its_trace_from_a_score_job(tmp_path):
    """The frames and states are the clean evaluation's; only the reward's numbers beside them
    come from the reward (a score job in its sandbox)."""
    from conftest import TASKS

    from rewardsmith.runners.jobs import PendingJob, collect_video, score_job
    from rewardsmith.runners.protocol import REWARD_FILE
    from rewardsmith.runners.sandboxes.base import Limits
    from rewardsmith.runners.sandboxes.process import ProcessSandbox
    from rewardsmith.task import load_task

    task = load_task(TASKS / "cartpole.yaml")
    evaluated, dest = tmp_path / "eval", tmp_path / "cand"
    dest.mkdir()
    _video_episode(evaluated, steps=3, frames=3)
    (evaluated / VIDEO_INFO).write_text(json.dumps({"frame_steps": [0, 1, 2, 3], "fps": 10, "terminated": False}))
    assert "3 frames for 4 frame steps" in collect_video(evaluated, dest, task, None)
    assert not (dest / MP4).exists() and not (evaluated / FRAMES).exists()

    angle = _video_episode(evaluated, steps=3, frames=4)
    score = PendingJob(ProcessSandbox(), tmp_path / "score", score_job(task, REWARD, per_step=True, wait=True,
                                                                       device="cpu"),
                       Limits(timeout_s=120, memory_mb=4096), files={REWARD_FILE: REWARD})
    try:
        assert collect_video(evaluated, dest, task, score) is None
    finally:
        score.close()
    assert (dest / MP4).stat().st_size > 0 and (dest / GIF).stat().st_size > 0
    trace = RolloutTrace.model_validate_json((dest / TRACE).read_text())
    assert trace.frame_steps == [0, 1, 2, 3] and trace.steps == 3
    np.testing.assert_allclose(trace.variables["pole_angle"], angle, rtol=1e-6)
    np.testing.assert_allclose(trace.components["upright"], np.exp(-angle / 0.2), rtol=1e-5)
    np.testing.assert_allclose(trace.reward, np.exp(-angle / 0.2), rtol=1e-5)  # cart at 0: centered is 1

    (evaluated / VIDEO).write_bytes(b"not an episode")
    assert "recorded no episode" in collect_video(evaluated, tmp_path / "other", task, None)


def test_a_torch_envs_video_is_the_first_episode_its_clean_evaluation_played(tmp_path, monkeypatch):
    """A torch env draws any of its envs, so the evaluation job records the video of its own
    first episode as it plays it, instead of playing one more episode for it: the video's states,
    actions and fitness are that episode's, and its frames show them."""
    from conftest import TASKS

    from rewardsmith.episodes import EpisodeBatch
    from rewardsmith.runners import guest
    from rewardsmith.runners.jobs import write_job
    from rewardsmith.runners.protocol import EPISODES_FILE, GO_FILE
    from rewardsmith.schemas import RecordSpec, WorkerJob
    from rewardsmith.task import load_task
    from rewardsmith.train.policy import save_policy

    task = load_task(TASKS / "cartpole.yaml")
    desc = task.env.describe()
    torch.manual_seed(3)
    save_policy(build_policy(4, desc.action, task.train), tmp_path / "policy.pt")  # an untrained policy: short episodes
    (tmp_path / GO_FILE).write_text("evaluate")
    write_job(tmp_path, WorkerJob(kind="evaluate", task=task.model_dump(mode="json"), device="cpu",
                                  record=RecordSpec(episodes=task.fitness.eval_episodes, sampled=2, video=True)))
    monkeypatch.chdir(tmp_path)
    played = []
    monkeypatch.setattr("rewardsmith.train.rollout.play_video_episode", lambda *a, **k: played.append(a))
    assert guest.main(["evaluate", str(tmp_path)]) == 0

    video = EpisodeBatch.from_bytes((tmp_path / VIDEO).read_bytes())
    evaluated = EpisodeBatch.from_bytes((tmp_path / EPISODES_FILE).read_bytes())
    first = evaluated.meta[0]
    assert not played and first.source == "eval" and video.meta[0].length == first.length < 500
    assert video.meta[0].fitness == pytest.approx(first.fitness)
    for name in desc.variable_names:
        np.testing.assert_array_equal(video.variables[name], evaluated.variables[name][:first.length])
    np.testing.assert_array_equal(video.action, evaluated.action[:first.length])
    info = json.loads((tmp_path / VIDEO_INFO).read_text())
    frames = np.load(tmp_path / FRAMES)
    assert info["frame_steps"][0] == 0 and info["frame_steps"][-1] == first.length
    assert len(frames) == len(info["frame_steps"]) and info["terminated"]
    # the last frame shows the pole where the episode's last state had it
    last = video.variables["pole_angle"][-1]
    columns = _pole_columns(frames[-1])
    upright = _pole_columns(fit_frame(CartPole(1, torch.device("cpu")).render(
        0, _cartpole_variables(0.0, float(video.variables["cart_pos"][-1])))))
    assert np.sign(columns.mean() - upright.mean()) == np.sign(last)
