import pytest
from conftest import GOOD_CARTPOLE_REWARD

from rewardsmith.critic import static_check

NAMES = ["cart_pos", "cart_vel", "pole_angle", "pole_vel", "action"]


def test_good_reward_passes():
    verdict = static_check(GOOD_CARTPOLE_REWARD, NAMES)
    assert verdict.ok and verdict.reason is None and verdict.warnings == ()


def test_helpers_and_math_allowed():
    code = ("import math\nimport torch.nn.functional as F\nSCALE = 2.0\n"
            "def helper(x):\n    return torch.exp(-x)\n"
            "def compute_reward(cart_pos):\n    r = helper(cart_pos) * math.pi\n    return r, {'r': r}\n")
    assert static_check(code, NAMES).ok


@pytest.mark.parametrize("code, words", [
    ("def compute_reward(cart_pos)\n  return 1", "does not parse: line 1"),
    ("def reward(cart_pos):\n    return cart_pos, {}", "no top-level function named compute_reward"),
    ("def compute_reward(cart_pos):\n    return cart_pos, {}\ndef compute_reward(cart_pos):\n    return cart_pos, {}",
     "2 times"),
    ("def compute_reward(cart_pos, pole_angel):\n    return cart_pos, {}", "unknown argument 'pole_angel'"),
    ("def compute_reward(**kw):\n    return 1, {}", "no \\*args or \\*\\*kwargs"),
    ("def compute_reward():\n    return 1, {}", "takes no arguments"),
    ("def compute_reward(cart_pos):\n    x = cart_pos", "no return statement"),
    ("def compute_reward(cart_pos):\n    return cart_pos, {}, 1", "returns 3 values"),
    ("def compute_reward(cart_pos):\n    return cart_pos, [cart_pos]", "components must be a dict"),
    ("def compute_reward(cart_pos):\n    return 1.0", "must return a pair"),
    ("import os\ndef compute_reward(cart_pos):\n    return cart_pos, {}", "imports 'os'"),
    ("from subprocess import run\ndef compute_reward(cart_pos):\n    return cart_pos, {}", "imports 'subprocess'"),
    ("def compute_reward(cart_pos):\n    __import__('os')\n    return cart_pos, {}", "uses __import__"),
    ("def compute_reward(cart_pos):\n    open('/etc/passwd')\n    return cart_pos, {}", "uses open"),
    ("def compute_reward(cart_pos):\n    g = cart_pos.__class__\n    return cart_pos, {}", "__class__"),
])
def test_broken_rewards_rejected_with_reason(code, words):
    verdict = static_check(code, NAMES)
    assert not verdict.ok
    assert verdict.stage == "static"
    import re

    assert re.search(words, verdict.reason), verdict.reason


def test_unverifiable_return_is_a_warning():
    code = "def compute_reward(cart_pos):\n    out = (cart_pos, {})\n    return out"
    verdict = static_check(code, NAMES)
    assert verdict.ok and any("cannot see statically" in w for w in verdict.warnings)


def test_nested_function_returns_are_not_the_rewards():
    code = ("def compute_reward(cart_pos):\n    def f():\n        return 1\n"
            "    return cart_pos, {'f': cart_pos}")
    assert static_check(code, NAMES).ok
