import pytest
import torch

from rewardsmith.errors import ExpressionError
from rewardsmith.expressions import FitnessProgram, StepExpression


def t(*values):
    return torch.tensor(values, dtype=torch.float32)


def test_step_expression_semantics():
    values = {"x": t(0.5, -2.0, 1.0), "y": t(1.0, 1.0, -1.0), "v": torch.tensor([[3.0, 4.0]] * 3)}
    assert StepExpression("abs(x) < 1 and y > 0", {"x", "y"})(values).tolist() == [1.0, 0.0, 0.0]
    assert StepExpression("not (x > 0) or y < 0", {"x", "y"})(values).tolist() == [0.0, 1.0, 1.0]
    assert StepExpression("-1 < x <= 1", {"x"})(values).tolist() == [1.0, 0.0, 1.0]
    assert StepExpression("norm(v)", {"v"})(values).tolist() == [5.0, 5.0, 5.0]
    assert StepExpression("v[1] - v[0]", {"v"})(values).tolist() == [1.0, 1.0, 1.0]
    assert StepExpression("clip(x, -1, 0.7)", {"x"})(values).tolist() == pytest.approx([0.5, -1.0, 0.7])
    assert StepExpression("minimum(x, 0) + maximum(y, 0)", {"x", "y"})(values).tolist() == [1.0, -1.0, 0.0]
    assert StepExpression("x if y > 0 else 2 * pi", {"x", "y"})(values).tolist() == pytest.approx(
        [0.5, -2.0, 6.2831853])
    assert StepExpression("1", {"x"})(values).tolist() == [1.0, 1.0, 1.0]


@pytest.mark.parametrize("text, words", [
    ("x.__class__", "Attribute is not allowed"),
    ("open('f')", "unknown function 'open'"),
    ("(lambda: 1)()", "only plain calls"),
    ("'a' + x", "only numeric constants"),
    ("[x for x in y]", "ListComp is not allowed"),
    ("x[y]", "only indexing a variable by a constant"),
    ("abs(x, y)", "takes 1 argument"),
    ("x <", "invalid expression"),
    ("", "non-empty"),
    ("z > 0", "unknown name 'z'"),
    ("mean(x)", "episode aggregation"),
])
def test_bad_step_expressions(text, words):
    with pytest.raises(ExpressionError, match=words.replace("(", r"\(").replace(")", r"\)")):
        StepExpression(text, {"x", "y"})


def test_fitness_program_splits_aggregations():
    p = FitnessProgram("sum(abs(a) < 1) / max_episode_steps - 0.1 * mean(b ** 2)", {"a", "b"})
    assert [agg.kind for agg in p.aggregations] == ["sum", "mean"]
    assert p.episode_value({"_agg0": 50.0, "_agg1": 2.0, "max_episode_steps": 100.0}) == pytest.approx(0.3)


@pytest.mark.parametrize("text, words", [
    ("mean(mean(a))", "cannot be nested"),
    ("a + mean(a)", "must be inside an aggregation"),
    ("mean(q)", "unknown name 'q' inside mean()"),
    ("mean(a) + steps", "unknown name 'steps'"),
])
def test_bad_fitness(text, words):
    with pytest.raises(ExpressionError, match=words.replace("(", r"\(").replace(")", r"\)")):
        FitnessProgram(text, {"a"})
