"""rewardsmith export --format eureka: the best reward as a TorchScript compute_reward for an
IsaacGymEnvs task, loaded outside rewardsmith; and the standalone module for Eureka's forms."""

import json
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import ROOT, TASKS, run_cli

import rewardsmith as rs
from rewardsmith.eureka_export import eureka_module
from rewardsmith.runs import RunDir
from rewardsmith.schemas import BestCandidate, Summary
from rewardsmith.standalone import best_reward
from rewardsmith.task import load_task

CORPUS = ROOT / "tests" / "rewards_corpus"
EXAMPLE = ROOT / "rewardsmith" / "envs" / "isaacgym" / "example.py"


def make_run(path: Path, task_file: str, code: str) -> Path:
    """A run directory as a solve leaves it, its best reward ``code``."""
    task = load_task(TASKS / task_file)
    run = RunDir.create(path, task, {"model": "builtin"})
    cand = run.candidate_dir(0, 1)
    cand.mkdir(parents=True)
    (cand / "reward.py").write_text(code)
    best = BestCandidate(iteration=0, index=1, fitness=0.93, success=True, reward_file="iter_00/cand_01/reward.py")
    run.write_summary(Summary(task=task.name, status="done", best=best, candidates=[], wall_s=1.0, iterations_done=1))
    return path


# Eureka's way: the task file, then the reward at its end, called from the task's compute_reward.
# The task file has a `margin` of its own, which the reward's helper of that name must not replace.
DROP_IN = '''
def margin(x):
    return "the task file's own margin"


class EurekaCartpole(CartpoleVecTask):
    def compute_reward(self):
        super().compute_reward()  # the resets
        {call}


if __name__ == "__main__":
    import json
    import runpy
    import sys

    task = EurekaCartpole(num_envs=6, seed=3)
    task.reset_idx(torch.arange(6))
    trained = runpy.run_path(sys.argv[1])["compute_reward"]  # the reward as it was trained, plain Python
    gaps = []
    for _ in range(20):
        task.step(torch.rand(6, 1) * 2 - 1)
        expected, parts = trained(dof_vel=task.dof_vel, dof_pos=task.dof_pos)
        gaps.append(float((task.rew_buf - expected).abs().max()))
    print(json.dumps({"scripted": isinstance(compute_reward, torch.jit.ScriptFunction), "gap": max(gaps),
                      "components": sorted(task.rew_dict), "expected_components": sorted(parts),
                      "margin": margin(1.0), "rewardsmith_loaded": any(m.startswith("rewardsmith") for m in sys.modules)}))
'''


def test_eureka_export_drops_into_an_isaacgymenvs_style_task_outside_rewardsmith(tmp_path):
    reward = CORPUS / "vectask" / "helpers_constants.py"  # constants, helpers, F, Tensor; trained as plain Python
    run = make_run(tmp_path / "run", "vectask_cartpole.yaml", reward.read_text())
    out = tmp_path / "eureka_reward.py"
    proc = run_cli("export", str(run), "--format", "eureka", "-o", str(out), "--sandbox", "process")
    assert proc.returncode == 0, proc.stderr
    assert "TorchScript compiles it" in proc.stderr and "upright, centered, spin" in proc.stderr
    text = out.read_text()
    assert "import rewardsmith" not in text and "@torch.jit.script\ndef compute_reward(" in text
    assert "from typing import Tuple, Dict\nimport math\nimport torch\nfrom torch import Tensor\n" in text
    call = next(line[1:].strip() for line in text.splitlines() if line.startswith("#     self.rew_buf[:]"))
    assert call == "self.rew_buf[:], self.rew_dict = compute_reward(self.dof_vel, self.dof_pos)"

    task_file = tmp_path / "cartpole_eureka.py"  # as Eureka writes it: the task's file, the reward at its end
    task_file.write_text(EXAMPLE.read_text() + "\n\n" + text + DROP_IN.replace("{call}", call))
    done = subprocess.run([sys.executable, "-I", str(task_file), str(reward)], capture_output=True, text=True,
                          timeout=120, cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    seen = json.loads(done.stdout.strip().splitlines()[-1])
    assert seen["scripted"] and not seen["rewardsmith_loaded"]
    assert seen["gap"] < 1e-5 and seen["components"] == seen["expected_components"] == ["centered", "spin", "upright"]
    assert seen["margin"] == "the task file's own margin"

    assert rs.export(run, format="eureka", sandbox="process") == text  # the library says the same


def test_a_reward_torchscript_cannot_take_is_not_exported_in_eureka_form(tmp_path):
    run = make_run(tmp_path / "run", "vectask_cartpole.yaml", (CORPUS / "vectask" / "torchscript_fallback.py").read_text())
    out = tmp_path / "eureka_reward.py"
    proc = run_cli("export", str(run), "--format", "eureka", "-o", str(out), "--sandbox", "process")
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert "does not run as TorchScript" in proc.stderr and "--format module" in proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1 and not out.exists()
    module = run_cli("export", str(run), "-o", str(out))  # as plain Python it exports
    assert module.returncode == 0 and "def compute_reward(" in out.read_text()


def test_eureka_header_for_a_run_on_another_backend_names_the_arguments(tmp_path):
    run = make_run(tmp_path / "run", "cartpole.yaml", (CORPUS / "cartpole" / "helpers_constants.py").read_text())
    text = eureka_module(best_reward(run))
    assert "= compute_reward(cart_pos, pole_angle, action)" in text and "(self.cart_pos" not in text
    assert "#   pole_angle (n) [rad]: pole angle from upright" in text
    assert "WEIGHTS = {" in text and "def _reward_closeness(x: Tensor, scale: float)" in text


@pytest.mark.parametrize("name", ["eureka_bare", "future_annotations"])
def test_standalone_module_of_eureka_forms_runs_without_rewardsmith(tmp_path, name):
    reward = CORPUS / "cartpole" / f"{name}.py"
    code = '"""A docstring of its own."""\n' + reward.read_text().split("\n", 1)[1]
    run = make_run(tmp_path / "run", "cartpole.yaml", code)
    out = tmp_path / "module.py"
    assert run_cli("export", str(run), "-o", str(out)).returncode == 0
    probe = ("import inspect, json, runpy, sys, torch\n"
             f"fn = runpy.run_path({str(out)!r})['compute_reward']\n"
             "names = [a.name for a in fn.schema.arguments] if hasattr(fn, 'schema') else inspect.signature(fn).parameters\n"
             "total, parts = fn(**{name: torch.zeros(4) for name in names})\n"
             "print(json.dumps([total.tolist(), sorted(parts), 'rewardsmith' in sys.modules]))\n")
    done = subprocess.run([sys.executable, "-I", "-c", probe], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    total, parts, loaded = json.loads(done.stdout)
    assert len(total) == 4 and parts and not loaded
