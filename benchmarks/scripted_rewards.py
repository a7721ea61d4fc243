"""The scripted LLM designer's answers for ``solve_cost.py``, per shipped task: a reward with the
wrong sign (it pays for what the task does not want), a constant one, one that ignores the goal,
and two that work. CartPole's are the test suite's (tests/llm_script.py)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

import llm_script  # noqa: E402

KINDS = ("wrong_sign", "constant", "goal_ignoring", "good", "good_2")

ACROBOT = {
    # -1 a step below the line (Acrobot-v1's own) plus how far below it is
    "good": '''
import torch

def compute_reward(tip_height: torch.Tensor):
    below = (tip_height <= 1.0).float()
    gap = (1.0 - tip_height).clamp(min=0.0) / 3.0
    return -below - 0.5 * gap, {"below": below, "gap": gap}
''',
    "good_2": '''
import torch

def compute_reward(tip_height: torch.Tensor, theta1_dot: torch.Tensor):
    progress = (tip_height - 1.0) / 3.0
    swing = theta1_dot.abs() / 12.5664
    return progress + 0.1 * swing, {"progress": progress, "swing": swing}
''',
    # the first one with its sign flipped: it pays for every step the tip stays down
    "wrong_sign": '''
import torch

def compute_reward(tip_height: torch.Tensor):
    below = (tip_height <= 1.0).float()
    gap = (1.0 - tip_height).clamp(min=0.0) / 3.0
    return below + 0.5 * gap, {"below": below, "gap": gap}
''',
    "constant": '''
import torch

def compute_reward(tip_height: torch.Tensor):
    zero = torch.zeros_like(tip_height)
    return zero, {"nothing": zero}
''',
    "goal_ignoring": '''
import torch

def compute_reward(theta2_dot: torch.Tensor):
    still = torch.exp(-theta2_dot.abs())
    return still, {"still": still}
''',
}

PENDULUM = {
    "good": '''
import torch

def compute_reward(theta: torch.Tensor, theta_dot: torch.Tensor, action: torch.Tensor):
    angle = theta.square()
    speed = 0.1 * theta_dot.square()
    effort = 0.001 * action[:, 0].square()
    return -(angle + speed + effort), {"angle": angle, "speed": speed, "effort": effort}
''',
    "good_2": '''
import torch

def compute_reward(cos_theta: torch.Tensor, theta_dot: torch.Tensor):
    up = cos_theta
    spin = 0.02 * theta_dot.square()
    return up - spin, {"up": up, "spin": spin}
''',
    "wrong_sign": '''
import torch

def compute_reward(theta: torch.Tensor, theta_dot: torch.Tensor, action: torch.Tensor):
    angle = theta.square()
    speed = 0.1 * theta_dot.square()
    effort = 0.001 * action[:, 0].square()
    return angle + speed + effort, {"angle": angle, "speed": speed, "effort": effort}
''',
    "constant": '''
import torch

def compute_reward(theta: torch.Tensor):
    zero = torch.zeros_like(theta)
    return zero, {"nothing": zero}
''',
    "goal_ignoring": '''
import torch

def compute_reward(action: torch.Tensor):
    effort = action[:, 0].square()
    return -effort, {"effort": effort}
''',
}

MOUNTAIN_CAR = {
    # MountainCarContinuous-v0's own
    "good": '''
import torch

def compute_reward(position: torch.Tensor, action: torch.Tensor):
    goal = (position >= 0.45).float()
    effort = action[:, 0].square()
    return 100.0 * goal - 0.1 * effort, {"goal": goal, "effort": effort}
''',
    "good_2": '''
import torch

def compute_reward(position: torch.Tensor):
    goal = (position >= 0.45).float()
    hurry = torch.ones_like(position)
    return 10.0 * goal - 0.1 * hurry, {"goal": goal, "hurry": hurry}
''',
    "wrong_sign": '''
import torch

def compute_reward(position: torch.Tensor, action: torch.Tensor):
    goal = (position >= 0.45).float()
    effort = action[:, 0].square()
    return -100.0 * goal + 0.1 * effort, {"goal": goal, "effort": effort}
''',
    "constant": '''
import torch

def compute_reward(position: torch.Tensor):
    zero = torch.zeros_like(position)
    return zero, {"nothing": zero}
''',
    "goal_ignoring": '''
import torch

def compute_reward(velocity: torch.Tensor):
    still = torch.exp(-100.0 * velocity.abs())
    return still, {"still": still}
''',
}

SCRIPTS = {
    "cartpole": {"wrong_sign": llm_script.PAYS_FOR_FALLING, "constant": llm_script.CONSTANT,
                 "goal_ignoring": llm_script.GOAL_IGNORING, "good": llm_script.PRODUCT,
                 "good_2": llm_script.WEIGHTED_SUM},
    "acrobot": ACROBOT,
    "pendulum": PENDULUM,
    "mountain_car": MOUNTAIN_CAR,
}

# each iteration's answers, wrong ones first
ITERATIONS = (("wrong_sign", "constant", "goal_ignoring", "good"), ("wrong_sign", "constant", "good_2", "good"))


def designer_answers(task: str) -> list[str]:
    rewards = SCRIPTS[task]
    return [rewards[kind] for answers in ITERATIONS for kind in answers]


def kind_of(task: str, code: str) -> str:
    """Which scripted reward ``code`` is (for the screening table)."""
    for kind, reward in SCRIPTS[task].items():
        if reward.strip() == code.strip():
            return kind
    return "other"
