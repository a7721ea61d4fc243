import pytest
import torch
from conftest import GOOD_CARTPOLE_REWARD

from rewardsmith.errors import RewardCodeError
from rewardsmith.reward import RewardFunction, check_finite

NAMES = ["cart_pos", "cart_vel", "pole_angle", "pole_vel", "action"]


def state(n=4):
    return {k: torch.linspace(-0.1, 0.1, n) for k in NAMES[:-1]}


def test_binds_by_name_in_any_order():
    fn = RewardFunction(GOOD_CARTPOLE_REWARD, NAMES)
    assert fn.parameters == ["pole_angle", "cart_pos", "action"]
    s = state()
    total, parts = fn.checked_call(s, torch.zeros(4), 4)
    expected = torch.exp(-s["pole_angle"].abs() / 0.2) * torch.exp(-s["cart_pos"].abs() / 2.4)
    torch.testing.assert_close(total, expected)
    assert list(parts) == ["upright", "centered"]


def test_subset_of_arguments():
    fn = RewardFunction("def compute_reward(cart_vel):\n    return -cart_vel**2, {'v': cart_vel}", NAMES)
    total, _ = fn.checked_call(state(), torch.zeros(4), 4)
    assert total.shape == (4,)


@pytest.mark.parametrize("code, words", [
    ("def compute_reward(pole_angel):\n    return pole_angel, {}", "unknown argument 'pole_angel'"),
    ("def compute_reward(*args):\n    return args[0], {}", "no \\*args"),
    ("def reward(cart_pos):\n    return cart_pos, {}", "no function named compute_reward"),
    ("def compute_reward(cart_pos)\n    return 1", "line 1"),
    ("raise ValueError('boom')", "ValueError: boom"),
])
def test_load_errors(code, words):
    with pytest.raises(RewardCodeError, match=words):
        RewardFunction(code, NAMES)


@pytest.mark.parametrize("body, words", [
    ("return cart_pos", "must return a pair"),
    ("return cart_pos[None], {}", "shape \\(1, 4\\); expected \\(4,\\)"),
    ("return cart_pos, [cart_pos]", "components must be a dict"),
    ("return cart_pos, {'a': cart_pos[:2]}", "component 'a' has shape \\(2,\\)"),
    ("return (cart_pos > 0), {}", "expected a float tensor"),
    ("return 1.0, {}", "must be a torch tensor"),
])
def test_output_checks(body, words):
    fn = RewardFunction(f"def compute_reward(cart_pos):\n    {body}", NAMES)
    with pytest.raises(RewardCodeError, match=words):
        fn.checked_call(state(), torch.zeros(4), 4)


def test_nonfinite_detected():
    fn = RewardFunction("def compute_reward(cart_pos):\n    return cart_pos / 0.0, {}", NAMES)
    total, parts = fn.checked_call(state(), torch.zeros(4), 4)
    with pytest.raises(RewardCodeError, match="NaN or infinite"):
        check_finite(total, parts)
