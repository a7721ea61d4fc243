"""Reward code in the forms the field writes it (tests/rewards_corpus/, see its README).

Each form passes the critic, loads, runs the way it says (TorchScript or plain Python) and trains
on the torch CartPole and through the VecTask adapter; each broken reward is caught where it can
be; and the critic and the loader agree: nothing the static check accepts fails in the sandbox for
a reason the static check could have seen.
"""

import ast
import json
import os
import re
from pathlib import Path

import pytest
import torch
from conftest import ROOT, TASKS, run_cli, sandbox_unavailable

from rewardsmith.contract import read_form, without_script
from rewardsmith.critic import static_check
from rewardsmith.reward import RewardFunction
from rewardsmith.runners.guest import check
from rewardsmith.task import load_task
from rewardsmith.train.config import PPOConfig
from rewardsmith.train.ppo import train

CORPUS = ROOT / "tests" / "rewards_corpus"
TASK = {"cartpole": load_task(TASKS / "cartpole.yaml"), "vectask": load_task(TASKS / "vectask_cartpole.yaml")}
ARGS = {name: task.env.describe().reward_arguments for name, task in TASK.items()}
GOOD = sorted((CORPUS / "cartpole").glob("*.py")) + sorted((CORPUS / "vectask").glob("*.py"))
BROKEN = sorted((CORPUS / "broken").glob("*.py"))


def ident(path: Path) -> str:
    return f"{path.parent.name}/{path.stem}"


def header(path: Path) -> tuple[str, str]:
    """``# runs as: torchscript`` -> ``("runs as", "torchscript")``."""
    match = re.match(r"# ([a-z ]+): (.*)", path.read_text().splitlines()[0])
    assert match, f"{path} has no header line"
    return match.group(1), match.group(2).strip()


def test_both_envs_have_every_style():
    names = {folder: sorted(p.name for p in (CORPUS / folder).glob("*.py")) for folder in TASK}
    assert names["cartpole"] == names["vectask"] and len(names["cartpole"]) >= 7


@pytest.mark.parametrize("path", GOOD, ids=ident)
def test_form_passes_the_critic_runs_as_it_says_and_trains(path):
    env_name = path.parent.name
    task, allowed = TASK[env_name], ARGS[env_name]
    code = path.read_text()
    verdict = static_check(code, allowed)
    assert verdict.ok and verdict.warnings == (), (verdict.reason, verdict.warnings)

    report = check(task, path, "cpu")  # what the sandbox's check job does: load, dry run
    assert report.ok, report.reason
    _, runs_as = header(path)
    assert report.runs_as == runs_as, report.torchscript_error
    scripted = read_form(code).scripted
    assert (report.torchscript_error is not None) == (scripted and runs_as == "python"), report.torchscript_error

    reward = RewardFunction.from_file(path, allowed)
    env = task.env.make(8, "cpu", seed=0)
    out = train(env, lambda v, a: reward.checked_call(v, a, env.num_envs),
                PPOConfig(total_timesteps=512, num_steps=32, early_stop=False, checkpoints=2))
    assert out.log.env_steps == 512 and reward.runs_as == runs_as
    components = out.log.checkpoints[-1].components
    assert list(components) == report.components and all(s.std >= 0 for s in components.values())

    if scripted:  # the scripted function and the same code as plain Python agree on real states
        plain = RewardFunction(ast.unparse(without_script(read_form(code))), allowed)
        assert plain.runs_as == "python"
        step = env.step(torch.rand(8, *env.action_spec.shape) if env.action_spec.kind == "continuous"
                        else torch.randint(0, 2, (8,)))
        got, want = reward.checked_call(step.variables, step.action, 8), plain.checked_call(step.variables, step.action, 8)
        torch.testing.assert_close(got[0], want[0])
        assert list(got[1]) == list(want[1])


@pytest.mark.parametrize("path", BROKEN, ids=ident)
def test_broken_reward_is_caught_where_it_can_be(path):
    who, words = header(path)
    verdict = static_check(path.read_text(), ARGS["cartpole"])
    if who == "static":
        assert not verdict.ok and verdict.stage == "static"
        assert words in verdict.reason
        return
    assert who == "dry run"
    assert verdict.ok, verdict.reason
    report = check(TASK["cartpole"], path, "cpu")
    assert not report.ok and words in report.reason, report.reason


def mutants(code: str) -> dict[str, str]:
    """Variants of a good reward: each import dropped, every function scripted, no function
    scripted, annotations postponed, the first argument misspelt where it is read."""
    lines = code.splitlines()
    out = {}
    for i, line in enumerate(lines):
        if re.match(r"(import|from) \w", line) and "__future__" not in line:
            out[f"without line {i + 1} ({line})"] = "\n".join(lines[:i] + lines[i + 1:])
    tree = ast.parse(code)
    defs = {n.lineno for n in tree.body if isinstance(n, ast.FunctionDef) and not n.decorator_list}
    out["all scripted"] = "\n".join(("@torch.jit.script\n" + line) if i + 1 in defs else line
                                    for i, line in enumerate(lines))
    out["none scripted"] = "\n".join(line for line in lines if line.strip() != "@torch.jit.script").replace(
        "compute_reward = torch.jit.script(compute_reward)", "")
    out["future annotations"] = "from __future__ import annotations\n" + code
    entry = next(n for n in tree.body if isinstance(n, ast.FunctionDef) and n.name == "compute_reward")
    first = entry.args.args[0].arg
    body = entry.body[0].lineno - 1
    read = next(i for i in range(body, len(lines)) if re.search(rf"\b{first}\b", lines[i]))
    lines_typo = list(lines)
    lines_typo[read] = re.sub(rf"\b{first}\b", first + "_", lines[read], count=1)
    out[f"{first} misspelt on line {read + 1}"] = "\n".join(lines_typo)
    return out


@pytest.mark.parametrize("path", sorted((CORPUS / "cartpole").glob("*.py")), ids=ident)
def test_static_check_and_sandbox_loader_agree(path, tmp_path):
    """On every variant: the static verdict is the loader's and dry run's verdict. What the static
    check accepts loads and runs; what it rejects (a name nothing defines) fails there too."""
    disagreements = []
    for label, code in mutants(path.read_text()).items():
        verdict = static_check(code, ARGS["cartpole"])
        variant = tmp_path / "reward.py"
        variant.write_text(code)
        report = check(TASK["cartpole"], variant, "cpu")
        if verdict.ok != report.ok:
            disagreements.append(f"{label}: static {verdict.reason or 'ok'} / dry run {report.reason or 'ok'}")
    assert not disagreements, "\n".join(disagreements)


def test_torchscript_reward_trains_in_the_sandbox_and_its_components_reach_the_reflection(tmp_path):
    import rewardsmith.api as api
    from rewardsmith.designer.context import reflection

    reward = CORPUS / "cartpole" / "eureka_torchscript.py"
    result, folder = api.train_reward(TASK["cartpole"], reward, sandbox="process", total_timesteps=4096,
                                      out=tmp_path / "run", threads=1)
    assert result.status == "ok" and result.runs_as == "torchscript" and result.torchscript_error is None
    stored = json.loads((folder / "result.json").read_text())
    assert stored["runs_as"] == "torchscript"
    names = {"upright_reward", "centered_reward", "calm_penalty"}
    for checkpoint in stored["train"]["checkpoints"]:
        assert set(checkpoint["components"]) == names
        assert {"mean", "std", "min", "max"} <= set(checkpoint["components"]["upright_reward"])
    text = reflection(result, TASK["cartpole"].fitness.success_threshold, show_fitness=True)
    assert all(name in text for name in names), text


def test_code_torchscript_cannot_take_trains_as_python_and_says_why(tmp_path):
    import rewardsmith.api as api

    reward = CORPUS / "vectask" / "torchscript_fallback.py"
    result, _ = api.train_reward(TASK["vectask"], reward, sandbox="process", total_timesteps=2048,
                                 out=tmp_path / "run", threads=1)
    assert result.status == "ok" and result.runs_as == "python", result.reason
    assert "TorchScript cannot compile it" in result.torchscript_error and "ambda" in result.torchscript_error
    assert set(result.component_names) == {"upright", "centered"}


def test_scripted_call_that_the_env_tensors_refuse_falls_back_to_python():
    code = ("import torch\n\n@torch.jit.script\ndef compute_reward(pole_angle: float):\n"
            "    up = torch.exp(-torch.abs(torch.as_tensor(pole_angle)))\n    return up, {'up': up}\n")
    reward = RewardFunction(code, ARGS["cartpole"])
    assert reward.runs_as == "torchscript"
    total, parts = reward({"pole_angle": torch.zeros(3)}, torch.zeros(3))  # a tensor, not the float it declared
    assert total.tolist() == [1.0, 1.0, 1.0] and reward.runs_as == "python"
    assert "cannot run it on the env's tensors" in reward.torchscript_error and "float" in reward.torchscript_error


def test_cli_trains_eureka_bare_form_in_bwrap(tmp_path):
    reason = sandbox_unavailable("bwrap")
    if reason is not None:
        if os.environ.get("CI"):
            pytest.fail(f"bwrap sandbox not available in CI: {reason}")
        pytest.skip(f"bwrap sandbox not available: {reason}")
    reward = CORPUS / "cartpole" / "eureka_bare.py"
    proc = run_cli("train", str(TASKS / "cartpole.yaml"), "--reward", str(reward), "--sandbox", "bwrap",
                   "--total-timesteps", "4096", "--out", str(tmp_path / "out"), "--json")
    assert proc.returncode == 0, proc.stderr
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    assert line["status"] == "ok" and line["env_steps"] > 0
    result = json.loads((tmp_path / "out" / "result.json").read_text())
    assert result["runs_as"] == "torchscript" and result["sandbox"] == "bwrap"
    assert set(result["train"]["checkpoints"][-1]["components"]) == {"angle_reward", "position_reward",
                                                                     "velocity_penalty"}


@pytest.mark.parametrize("env_name", sorted(TASK))
def test_the_prompts_example_is_the_form_we_want(env_name, tmp_path):
    """What the designer's prompt shows passes the critic without a warning, trains as plain
    Python, and its Eureka export runs as TorchScript on the env's tensors."""
    from rewardsmith.designer.context import example_code, system_prompt
    from rewardsmith.eureka_export import eureka_text

    task = TASK[env_name]
    env = task.env.describe()
    code = example_code(env)
    assert code in system_prompt(env) and "typing" in system_prompt(env)
    verdict = static_check(code, ARGS[env_name])
    assert verdict.ok and verdict.warnings == (), verdict
    for text, runs_as in ((code, "python"), (eureka_text(code), "torchscript")):
        path = tmp_path / "reward.py"
        path.write_text(text)
        report = check(task, path, "cpu")
        assert report.ok and report.runs_as == runs_as, (report.reason, report.torchscript_error)


@torch.jit.script
def _scripted_reward(pole_angle: torch.Tensor, cart_pos: torch.Tensor):
    upright = torch.exp(-torch.abs(pole_angle) / 0.2)
    return upright, {"upright": upright, "centered": torch.exp(-torch.abs(cart_pos))}


def test_rs_wrap_takes_eureka_code_and_scripted_functions():
    import gymnasium as gym

    import rewardsmith as rs

    code = (CORPUS / "cartpole" / "eureka_bare.py").read_text()  # no file behind it: TorchScript reads linecache
    for reward, names in ((code, ["angle_reward", "position_reward", "velocity_penalty"]),
                          (_scripted_reward, ["upright", "centered"])):
        env = rs.wrap(gym.make("CartPole-v1"), reward)
        obs, _ = env.reset(seed=0)
        obs, total, *_, info = env.step(0)
        assert sorted(info["reward_components"]) == sorted(names)
        if reward is _scripted_reward:
            assert total == pytest.approx(float(torch.exp(-torch.tensor(abs(obs[2])) / 0.2)), rel=1e-5)


def test_llm_answers_in_eureka_style_need_no_fix(tmp_path):
    """A model that answers as Eureka's do (a TorchScript function, Tuple/Dict without an import)
    gets its candidates through the critic, dry run included, on the first answer."""
    from rewardsmith.critic import Critic
    from rewardsmith.designer import DesignRequest
    from rewardsmith.designer.llm import LLMDesigner
    from rewardsmith.llm.client import LLMClient
    from rewardsmith.llm.scripted import ScriptedBackend
    from rewardsmith.runners.sandboxes import Limits, make_sandbox

    task = TASK["cartpole"]
    bare = (CORPUS / "cartpole" / "eureka_bare.py").read_text()
    answers = [f"Here is the reward.\n```python\n{(CORPUS / 'cartpole' / name).read_text()}\n```"
               for name in ("eureka_torchscript.py", "eureka_bare.py")]
    answers.append(f"Reward:\n\n{bare.split(chr(10), 1)[1]}")  # no fence, no imports, as Eureka's answers come
    backend = ScriptedBackend(answers)
    critic = Critic(task, make_sandbox("process"), Limits(timeout_s=120, memory_mb=2048), tmp_path / "checks")
    request = DesignRequest(task, task.env.describe(), [], 0, 3, check=critic.check)
    candidates = LLMDesigner(LLMClient(backend)).propose(request)
    assert len(backend.requests) == 1, [r.messages[-1].content for r in backend.requests[1:]]  # no fix asked for
    for candidate in candidates:
        assert "error" not in candidate.origin and candidate.origin["attempts"] == []
        verdict, report = critic.review(candidate.code)
        assert verdict.ok and report is not None and report.runs_as == "torchscript", (verdict, report)
    # the stored reward.py of the bare answer runs outside rewardsmith too: the imports were added
    added = "import torch\nfrom torch import Tensor\nfrom typing import Dict, Tuple\n"
    assert candidates[2].code.startswith(added + "@torch.jit.script")


@pytest.mark.slow
@pytest.mark.parametrize("path", GOOD, ids=ident)
def test_every_form_trains_and_evaluates_in_the_sandbox(path, tmp_path):
    import rewardsmith.api as api

    result, folder = api.train_reward(TASK[path.parent.name], path, sandbox="process", total_timesteps=2048,
                                      out=tmp_path / "run", threads=1)
    assert result.status == "ok" and result.fitness is not None, result.reason
    assert result.runs_as == header(path)[1], result.torchscript_error
    stored = json.loads((folder / "result.json").read_text())
    assert stored["runs_as"] == result.runs_as and stored["train"]["checkpoints"][-1]["components"]
