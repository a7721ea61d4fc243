import pytest
import torch

from rewardsmith.expressions import FitnessProgram
from rewardsmith.fitness import FitnessTracker


def run(expr, xs, terminated, truncated, max_steps=4):
    """Feed a (steps, envs) sequence of x values with done flags; return the tracker."""
    program = FitnessProgram(expr, {"x"})
    n = len(xs[0])
    tracker = FitnessTracker(program, n, max_steps, {"big": "x > 10"}, ["x"], torch.device("cpu"))
    for x, term, trunc in zip(xs, terminated, truncated):
        tracker.update({"x": torch.tensor(x, dtype=torch.float32)}, torch.zeros(n),
                       torch.tensor(term), torch.tensor(trunc))
    return tracker


F, T = False, True


def test_sum_mean_and_episode_statistics():
    xs = [[1, 1], [2, 20], [3, 1], [4, 1]]
    term = [[F, F], [F, T], [F, F], [F, F]]
    trunc = [[F, F], [F, F], [F, F], [T, F]]
    tr = run("sum(x < 5) / max_episode_steps", xs, term, trunc)
    # env0: 4 steps all < 5 -> 1.0 (truncated); env1: steps 1 then 20 -> 1/4 (terminated by 'big')
    assert tr.first_fitness.tolist() == [1.0, 0.25]
    assert tr.first_length.tolist() == [4, 2]
    assert tr.first_episode_reasons() == {"time_limit": 1, "big": 1}
    interval = tr.pop_interval()
    assert interval["episodes"] == 2 and interval["fitness"] == pytest.approx(0.625)
    assert tr.pop_interval()["episodes"] == 0  # cleared


@pytest.mark.parametrize("expr, expected", [
    ("mean(x)", [2.5]), ("min(x)", [1.0]), ("max(x)", [4.0]), ("last(x)", [4.0]),
    ("any(x > 3)", [1.0]), ("all(x > 1)", [0.0]), ("episode_length", [4.0]),
    ("truncated - terminated", [1.0]), ("mean(x) - 0.5 * max(x)", [0.5]),
])
def test_aggregations(expr, expected):
    tr = run(expr, [[1], [2], [3], [4]], [[F]] * 4, [[F], [F], [F], [T]])
    assert tr.first_fitness.tolist() == pytest.approx(expected)


def test_accumulators_reset_between_episodes():
    xs = [[1], [1], [5], [5]]
    tr = run("mean(x)", xs, [[F], [T], [F], [T]], [[F]] * 4)
    assert tr.first_fitness.tolist() == [1.0]
    interval = tr.pop_interval()
    assert interval["episodes"] == 2 and interval["fitness"] == pytest.approx(3.0)
    assert interval["terminations"] == {"other_termination": 2}
