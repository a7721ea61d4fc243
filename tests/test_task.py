import pytest
import yaml
from conftest import TASKS, run_cli

from rewardsmith.errors import TaskFileError
from rewardsmith.task import load_task

VALID = yaml.safe_load((TASKS / "cartpole.yaml").read_text())


def _shipped(path):
    """A task file as a test parameter; Meta-World ones skip when its extra is not installed."""
    import importlib.util

    missing = "Meta-World/" in path.read_text() and importlib.util.find_spec("metaworld") is None
    return pytest.param(path, id=path.name, marks=pytest.mark.skipif(
        missing, reason="needs the metaworld extra: pip install 'rewardsmith[metaworld]'"))


@pytest.mark.parametrize("path", [_shipped(p) for p in sorted(TASKS.glob("*.yaml"))])
def test_every_shipped_task_loads(path):
    task = load_task(path)
    assert task.name and task.description
    assert task.fitness.success_threshold is not None


def _write(tmp_path, data):
    path = tmp_path / "task.yaml"
    path.write_text(yaml.safe_dump(data) if not isinstance(data, str) else data)
    return path


def _mutate(**changes):
    data = yaml.safe_load(yaml.safe_dump(VALID))
    for dotted, value in changes.items():
        *parents, key = dotted.split(".")
        node = data
        for p in parents:
            node = node[p]
        if value is ...:
            del node[key]
        else:
            node[key] = value
    return data


@pytest.mark.parametrize("changes, field, words", [
    ({"fitness": ...}, "fitness", "field required"),
    ({"env.num_env": 8}, "env.num_env", "unknown field"),
    ({"search.iteratons": 3}, "search.iteratons", "unknown field"),
    ({"env.num_envs": "many"}, "env.num_envs", "integer"),
    ({"train.learning_rate": -1}, "train.learning_rate", "greater than 0"),
    ({"env.id": "CartPol"}, "env.id", "unknown environment 'torch:CartPol'"),
    ({"env.backend": "unity"}, "env.id", "unknown env backend 'unity'"),
    ({"fitness.expression": "mean(pole_angel < 0.2)"}, "fitness.expression", "unknown name 'pole_angel'"),
    ({"fitness.expression": "pole_angle < 0.2"}, "fitness.expression", "must be inside an aggregation"),
    ({"fitness.expression": "mean(__import__('os'))"}, "fitness.expression", "unknown function"),
])
def test_bad_task_names_the_field(tmp_path, changes, field, words):
    path = _write(tmp_path, _mutate(**changes))
    with pytest.raises(TaskFileError) as err:
        load_task(path)
    message = str(err.value)
    assert f": {field}" in message and words in message
    assert "\n" not in message


def test_not_yaml_and_missing_file(tmp_path):
    with pytest.raises(TaskFileError, match="not valid YAML"):
        load_task(_write(tmp_path, "name: [unclosed"))
    with pytest.raises(TaskFileError, match="no such task file"):
        load_task(tmp_path / "nope.yaml")
    with pytest.raises(TaskFileError, match="mapping"):
        load_task(_write(tmp_path, "- a\n- b\n"))


def test_cli_bad_task_exit_2_no_traceback_nothing_written(tmp_path):
    path = _write(tmp_path, _mutate(**{"env.num_env": 8}))
    out = tmp_path / "run"
    proc = run_cli("solve", str(path), "--out", str(out))
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = [line for line in proc.stderr.strip().splitlines() if line.startswith("error:")]
    assert len(lines) == 1 and "env.num_env: unknown field" in lines[0]
    assert not out.exists()
    assert not (tmp_path / "runs").exists()


def test_overrides_are_validated_and_do_not_mutate():
    from rewardsmith.api import apply_overrides

    task = load_task(TASKS / "cartpole.yaml")
    changed = apply_overrides(task, iterations=5, total_timesteps=1000)
    assert changed.search.iterations == 5 and changed.train.total_timesteps == 1000
    assert task.search.iterations == VALID["search"]["iterations"]
    with pytest.raises(TaskFileError, match="search.samples"):
        apply_overrides(task, samples=0)
