"""The edges a user touches, tried through the real CLI as a new user would (issue 15).

Every mistake of the user's ends with exit code 2, one line ``error: ...``, no traceback, no blank
line and nothing written; a candidate that is rejected or fails ends ``train`` (and ``validate``)
with exit code 1 and its reason, also in the ``--json`` line.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest
import yaml
from conftest import GOOD_CARTPOLE_REWARD, ROOT, TASKS, run_cli

CARTPOLE = str(TASKS / "cartpole.yaml")
VALID = yaml.safe_load((TASKS / "cartpole.yaml").read_text())


def _task(tmp: Path, name: str = "task.yaml", **changes) -> str:
    """The CartPole task with dotted fields changed (``None`` deletes), or raw text."""
    data = yaml.safe_load(yaml.safe_dump(VALID))
    for dotted, value in changes.items():
        *parents, key = dotted.split("__")
        node = data
        for part in parents:
            node = node.setdefault(part, {})
        if value is None:
            node.pop(key, None)
        else:
            node[key] = value
    path = tmp / name
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _text(tmp: Path, name: str, text: str) -> str:
    path = tmp / name
    path.write_bytes(text.encode("latin-1") if name.endswith(".latin1.py") else text.encode())
    return str(path)


def _pendulum(tmp: Path, **env) -> str:
    data = {"name": "pendulum", "description": "swing up", "env": {"backend": "gymnasium", "id": "Pendulum-v1", **env},
            "fitness": {"expression": "mean(cos_theta)", "success_threshold": 0.9}}
    path = tmp / "pendulum.yaml"
    path.write_text(yaml.safe_dump(data))
    return str(path)


def _train_folder(tmp: Path) -> str:
    """What `rewardsmith train` leaves, made without training (for the commands that only read it)."""
    from rewardsmith.runs import RunDir, atomic_write_json, single_summary
    from rewardsmith.schemas import CandidateResult
    from rewardsmith.task import load_task

    task = load_task(CARTPOLE)
    run = RunDir.create_single(tmp / "trained", task, {"sandbox": "process"})
    (run.path / "reward.py").write_text(GOOD_CARTPOLE_REWARD)
    result = CandidateResult(iteration=0, index=0, status="ok", fitness=0.97, success=True, reward_file="reward.py",
                             code=GOOD_CARTPOLE_REWARD)
    atomic_write_json(run.path / "result.json", result)
    run.write_summary(single_summary(task.name, result))
    return str(run.path)


def _solve_run(tmp: Path) -> str:
    from fake_run import make_run

    return str(make_run(tmp / "solved").path)


def _snapshot(folder: Path) -> dict:
    return {p: p.stat().st_mtime_ns for p in folder.rglob("*")} if folder.exists() else {}


def _assert_one_line_error(proc, words: str | list[str]) -> None:
    assert proc.returncode == 2, (proc.returncode, proc.stdout[-2000:], proc.stderr[-2000:])
    assert "Traceback" not in proc.stderr + proc.stdout
    lines = proc.stderr.splitlines()
    assert "" not in lines, proc.stderr  # no blank line before (or after) the error
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1 and lines[-1] == errors[0], proc.stderr
    for part in [words] if isinstance(words, str) else words:
        assert part in errors[0], errors[0]


# (id, arguments made from a scratch folder, words of the one-line error)
USER_ERRORS = [
    # output paths
    ("train --out /dev/null/run", lambda t: ["train", CARTPOLE, "--reward", _text(t, "r.py", GOOD_CARTPOLE_REWARD),
                                             "--out", "/dev/null/run"], "--out /dev/null/run: /dev/null is not a folder"),
    ("train --out /proc/run", lambda t: ["train", CARTPOLE, "--reward", _text(t, "r.py", GOOD_CARTPOLE_REWARD),
                                         "--out", "/proc/run"], "--out /proc/run: cannot write in /proc"),
    ("solve --out /dev/null/run", lambda t: ["solve", CARTPOLE, "--out", "/dev/null/run"], "/dev/null is not a folder"),
    ("solve --out FILE", lambda t: ["solve", CARTPOLE, "--out", _text(t, "afile", "x")], "it is a file, not a folder"),
    ("export -o /dev/null/x.py", lambda t: ["export", _train_folder(t), "-o", "/dev/null/x.py"],
     "-o /dev/null/x.py: /dev/null is not a folder"),
    ("export -o FOLDER", lambda t: ["export", _train_folder(t), "-o", str(t)], "it is a folder"),
    # environments
    ("describe module:EnvId, no module", lambda t: ["describe", "gymnasium:no_such_module_x:MyEnv-v0"],
     "no module named 'no_such_module_x'"),
    ("describe unknown env", lambda t: ["describe", "torch:Nope"], "unknown environment 'torch:Nope'"),
    # options
    ("--device cuda:99", lambda t: ["solve", CARTPOLE, "--device", "cuda:99"], "--device cuda:99: "),
    ("--device foo", lambda t: ["train", CARTPOLE, "--reward", "r.py", "--device", "foo"], "'foo' is not a device"),
    ("--set misspelt field", lambda t: ["solve", CARTPOLE, "--set", "train.learnin_rate=1"],
     "train.learnin_rate: unknown field (did you mean learning_rate?)"),
    ("--set misspelt section", lambda t: ["solve", CARTPOLE, "--set", "trian.seed=1"], "(did you mean train?)"),
    ("--set without =", lambda t: ["solve", CARTPOLE, "--set", "train.seed"], "write it as KEY=VALUE"),
    ("--iterations 0", lambda t: ["solve", CARTPOLE, "--iterations", "0"],
     "--iterations: search.iterations: Input should be greater than or equal to 1"),
    ("unknown option", lambda t: ["solve", CARTPOLE, "--bogus"], "No such option: --bogus"),
    ("bad choice", lambda t: ["solve", CARTPOLE, "--sandbox", "vm"], "--sandbox: 'vm' is not one of"),
    ("missing option", lambda t: ["train", CARTPOLE], "Missing option '--reward'"),
    ("--seed not a number", lambda t: ["train", CARTPOLE, "--reward", "r.py", "--seed", "x"], "--seed: "),
    ("--total-timesteps 1.5", lambda t: ["train", CARTPOLE, "--reward", "r.py", "--total-timesteps", "1.5"],
     "--total-timesteps: '1.5' is not a whole number"),
    ("--api-base not a URL", lambda t: ["solve", CARTPOLE, "--model", "openai/gpt-4o", "--api-base", "localhost"],
     "--api-base: 'localhost' is not a URL"),
    ("eval --episodes 0", lambda t: ["eval", _train_folder(t), "--episodes", "0"],
     "--episodes: fitness.eval_episodes: Input should be greater than or equal to 1"),
    ("eval --timeout -1", lambda t: ["eval", _train_folder(t), "--timeout", "-1"], "--timeout: sandbox.timeout_s"),
    ("eval --device gpu", lambda t: ["eval", _train_folder(t), "--device", "gpu"], "--device: 'gpu' is not a device"),
    # task files
    ("every problem, did you mean", lambda t: ["solve", _task(t, env__num_envs=0, env__nmu_envs=3, search__iteratons=2)],
     ["3 problems: ", "env.num_envs: Input should be greater than or equal to 1",
      "env.nmu_envs: unknown field (did you mean num_envs?)", "search.iteratons: unknown field (did you mean iterations?)"]),
    ("env.variables labelled", lambda t: ["validate", _pendulum(t, variables=[{"name": "angle", "obs": 7}])],
     "env.variables: angle: obs index 7 is outside the observation (size 3)"),
    ("env.kwargs labelled", lambda t: ["validate", _pendulum(t, kwargs={"gravity": 3})],
     "env.kwargs: gymnasium:Pendulum-v1 does not take {'gravity': 3}"),
    ("YAML syntax", lambda t: ["validate", _text(t, "t.yaml", "name: x\nenv: {backend: torch, id: CartPole\nfitness: 1\n")],
     "not valid YAML at line 3, column 8: expected ',' or '}', but got ':' (a flow mapping from line 2)"),
    ("no such task file", lambda t: ["solve", str(t / "nope.yaml")], "no such task file"),
    # fitness expressions
    ("fitness: 400 digits", lambda t: ["validate", _task(t, fitness__expression="mean(cart_pos) > 1" + "0" * 400)],
     "is too large"),
    ("fitness: 9**9**9", lambda t: ["validate", _task(t, fitness__expression="mean(cart_pos) < 9**9**9")],
     "9 ** 9 ** 9 has no finite value (it overflows)"),
    ("fitness: index a scalar", lambda t: ["validate", _task(t, fitness__expression="mean(pole_angle[5])")],
     "pole_angle is one number per env; it cannot be indexed"),
    ("fitness: divide by zero", lambda t: ["validate", _task(t, fitness__expression="mean(pole_angle) / 0")],
     "mean(pole_angle) / 0 divides by zero"),
    # runs
    ("resume with a task", lambda t: ["solve", CARTPOLE, "--resume", _solve_run(t)], "not both"),
    ("resume changes the env", lambda t: ["solve", "--resume", _solve_run(t), "--set", "env.num_envs=8"],
     "--set env.num_envs cannot change when a run is resumed"),
    ("resume changes the seed", lambda t: ["solve", "--resume", _solve_run(t), "--seed", "3"],
     "--seed (train.seed) cannot change"),
    ("resume a train folder", lambda t: ["solve", "--resume", _train_folder(t)], "cannot be resumed"),
    ("rank a train folder", lambda t: ["rank", _train_folder(t)], "nothing to rank"),
    ("report a folder that is no run", lambda t: ["report", str(t)], "is not a rewardsmith run directory"),
    ("reward file not text", lambda t: ["train", CARTPOLE, "--reward", _text(t, "r.latin1.py", "# caf\xe9\n"),
                                        "--sandbox", "process"], "cannot read the reward file"),
]


@pytest.mark.parametrize("case, make_args, words", USER_ERRORS, ids=[c[0] for c in USER_ERRORS])
def test_user_errors_are_one_line_exit_2_and_write_nothing(tmp_path, case, make_args, words):
    args = make_args(tmp_path)
    out = tmp_path / "out"
    if args[0] in ("solve", "train") and "--out" not in args and "--resume" not in args:
        args = [*args, "--out", str(out)]
    before = _snapshot(tmp_path)
    proc = run_cli(*args, cwd=tmp_path)
    _assert_one_line_error(proc, words)
    assert not out.exists() and not (tmp_path / "runs").exists()
    assert _snapshot(tmp_path) == before  # not even the run folders that were only read


REJECTED = {
    "syntax error": ("def compute_reward(pole_angle)\n    return pole_angle, {}\n", "does not parse: line 1"),
    "import os": ("import os\ndef compute_reward(pole_angle):\n    return pole_angle, {}\n", "imports 'os'"),
    "unknown argument": ("def compute_reward(pole_angel):\n    return pole_angel, {}\n", "unknown argument 'pole_angel'"),
    "no compute_reward": ("def reward(pole_angle):\n    return pole_angle, {}\n", "no top-level function named"),
}


@pytest.mark.parametrize("case", list(REJECTED))
def test_train_with_a_rejected_reward_exits_1_with_its_reason(tmp_path, case):
    code, words = REJECTED[case]
    proc = run_cli("train", CARTPOLE, "--reward", _text(tmp_path, "r.py", code), "--sandbox", "process", "--json",
                   "--out", str(tmp_path / "out"), cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    assert line["status"] == "rejected" and words in line["reason"] and line["env_steps"] == 0
    assert f"rejected: critic: {line['reason'].removeprefix('critic: ')}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_train_with_a_reward_that_fails_in_the_sandbox_and_validate_agree(tmp_path):
    wrong_shape = _text(tmp_path, "r.py", "import torch\ndef compute_reward(pole_angle):\n"
                                          "    return pole_angle[:, None], {}\n")
    proc = run_cli("train", CARTPOLE, "--reward", wrong_shape, "--sandbox", "process", "--out", str(tmp_path / "o"),
                   "--json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    assert line["status"] in ("rejected", "failed") and "expected (" in line["reason"]
    checked = run_cli("validate", CARTPOLE, "--reward", wrong_shape, "--sandbox", "process", "--json", cwd=tmp_path)
    assert checked.returncode == 1, checked.stderr
    verdict = json.loads(checked.stdout.strip().splitlines()[-1])
    assert not verdict["ok"] and verdict["verdict"]["stage"] == "dry_run" and "expected (" in verdict["verdict"]["reason"]
    assert "rejected (dry_run):" in checked.stderr and not (tmp_path / "runs").exists()


def test_a_fitness_that_divides_by_zero_at_evaluation_fails_the_candidate(tmp_path):
    task = _task(tmp_path, fitness__expression="1 / sum(abs(pole_angle) > 5)")  # never true: 1/0 every episode
    proc = run_cli("train", task, "--reward", _text(tmp_path, "r.py", GOOD_CARTPOLE_REWARD), "--sandbox", "process",
                   "--total-timesteps", "1024", "--out", str(tmp_path / "o"), "--json", cwd=tmp_path)
    assert proc.returncode == 1, proc.stderr
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    assert line["status"] == "failed" and "fitness is inf" in line["reason"] and line["success"] is False


def test_the_happy_edges(tmp_path):
    version = run_cli("--version")
    assert version.returncode == 0 and re.fullmatch(r"rewardsmith \d+\.\d+\.\d+\n", version.stdout)
    helped = run_cli("solve", "-h", env={**os.environ, "COLUMNS": "200"})
    assert helped.returncode == 0
    for default in ("[default: auto]", "[default: local]", "[default: metric]"):
        assert default in helped.stdout, default  # the choice options show their defaults
    # 1e5 for an integer step count, checked with the env built and stepped in the sandbox
    task = _task(tmp_path, train__total_timesteps=12345)
    Path(task).write_text(Path(task).read_text().replace("12345", "1e5"))  # as a person types it, unquoted
    proc = run_cli("validate", task, "--sandbox", "process", "--total-timesteps", "2e5", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    # longer than 80 columns, and still one line in a pipe
    assert f"{task}: the task is valid; torch:CartPole builds and steps (4 state variables)\n" == proc.stdout
    schema = json.loads(run_cli("schema").stdout)
    assert {"env", "fitness", "search", "train", "sandbox"} <= set(schema["properties"])
    assert not list(tmp_path.glob("runs"))


def test_readme_has_the_current_task_field_reference():
    reference = run_cli("schema", "--markdown").stdout.strip()
    readme = (ROOT / "README.md").read_text()
    start = readme.index("rewardsmith schema --markdown`; tests/test_edges.py")
    section = readme[readme.index("\n", start) + 1:readme.index("<!-- end of the generated reference -->")].strip()
    assert section == reference  # regenerate with `rewardsmith schema --markdown` when a field changes
    assert "| `total_timesteps` |" in section and "| `learning_rate` |" in section  # the train: fields


def test_describing_a_mujoco_env_is_quiet_and_leaves_no_log(tmp_path):
    proc = run_cli("describe", "gymnasium:HalfCheetah-v5", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "WARNING" not in proc.stdout + proc.stderr and proc.stderr == ""
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()


def test_module_env_ids_keep_the_registered_names(tmp_path):
    proc = run_cli("describe", "gymnasium:gymnasium.envs:CartPole-v1", "--json")
    assert proc.returncode == 0, proc.stderr
    names = [v["name"] for v in json.loads(proc.stdout)["variables"]]
    assert names == ["cart_pos", "cart_vel", "pole_angle", "pole_vel"]


def test_a_train_folder_is_a_run_for_report_eval_and_export(tmp_path):
    folder = tmp_path / "trained"
    proc = run_cli("train", CARTPOLE, "--reward", _text(tmp_path, "r.py", GOOD_CARTPOLE_REWARD), "--sandbox", "process",
                   "--total-timesteps", "4096", "--out", str(folder), "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout.strip().splitlines()[-1])["status"] == "ok"
    evaluated = run_cli("eval", str(folder), "--seeds", "2", "--sandbox", "process", "--json", cwd=tmp_path)
    assert evaluated.returncode == 0, evaluated.stderr
    scores = json.loads(evaluated.stdout.strip().splitlines()[-1])
    assert len(scores["seeds"]) == 2 and (folder / "policy_eval.json").is_file()
    reported = run_cli("report", str(folder), "--json", cwd=tmp_path)
    assert reported.returncode == 0, reported.stderr
    report = json.loads(reported.stdout.strip().splitlines()[-1])
    assert report["best"]["reward_file"] == "reward.py" and report["policy_eval"]["mean"] == scores["mean"]
    assert [c["status"] for c in report["candidates"]] == ["ok"]
    page = (folder / "report.html").read_text()
    assert "Best policy evaluated on 2 seeds" in page and "compute_reward" in page
    text = run_cli("report", str(folder), cwd=tmp_path).stdout
    assert "policy evaluation (2 seeds x 16 episodes)" in text
    exported = run_cli("export", str(folder), "-o", str(tmp_path / "reward_module.py"), cwd=tmp_path)
    assert exported.returncode == 0, exported.stderr
    assert "def compute_reward(" in (tmp_path / "reward_module.py").read_text()


def test_resume_applies_what_may_change_and_redoes_candidates_that_hit_a_raised_limit(tmp_path):
    from rewardsmith.runs import RunDir
    from rewardsmith.schemas import Candidate, CandidateResult
    from rewardsmith.task import load_task

    # a run killed in its first iteration: candidate 0 had ended on the time limit, 1 had trained
    task = load_task(CARTPOLE).with_settings({"search.iterations": 1, "search.samples": 2, "sandbox.timeout_s": 5,
                                              "train.total_timesteps": 2048})
    run = RunDir.create(tmp_path / "run", task, {"sandbox": "process"})
    codes = [GOOD_CARTPOLE_REWARD, GOOD_CARTPOLE_REWARD.replace("/ 2.4", "/ 2.0")]
    run.save_proposals(0, [Candidate(iteration=0, index=i, code=code) for i, code in enumerate(codes)])
    for index, (status, reason, fitness) in enumerate([("failed", "timeout: still running after 5 s", None),
                                                       ("ok", None, 0.5)]):
        run.save_result(CandidateResult(iteration=0, index=index, status=status, reason=reason, fitness=fitness,
                                        reward_file=f"iter_00/cand_{index:02d}/reward.py", code=codes[index]))
    kept = (run.candidate_dir(0, 1) / "result.json").stat().st_mtime_ns
    proc = run_cli("solve", "--resume", str(run.path), "--timeout", "600", "--samples", "3", "--json", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert "resume: sandbox.timeout_s 5.0 -> 600.0" in proc.stderr and "resume: search.samples 2 -> 3" in proc.stderr
    assert "iteration 1 candidate 0 (timeout: still running after 5 s) is redone with the higher limit" in proc.stderr
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    assert line["status"] == "done" and line["candidates"] == {"ok": 2}
    assert (run.candidate_dir(0, 1) / "result.json").stat().st_mtime_ns == kept  # the finished one is not redone
    stored = yaml.safe_load((run.path / "task.yaml").read_text())
    assert stored["sandbox"]["timeout_s"] == 600.0 and stored["search"]["samples"] == 3


def test_preflight_rides_out_two_transient_answers(tmp_path):
    from email.utils import formatdate

    from fake_llm_server import FakeLLMServer
    from llm_script import Script, fenced

    banned = fenced("import os\ndef compute_reward(pole_angle):\n    return pole_angle, {}\n")
    script = Script(preflight=[(429, {"retry-after": formatdate(time.time() + 1.5, usegmt=True)}),
                               (503, {"retry-after": "1"})],
                    designer=[banned] * 4, fix=[banned] * 40)
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(OPENAI_API_KEY="sk-test-edges-0123456789", REWARDSMITH_CACHE_DIR=str(tmp_path / "cache"))
    out = tmp_path / "run"
    with FakeLLMServer(script) as server:
        proc = run_cli("solve", CARTPOLE, "--model", "openai/gpt-4o-mini", "--api-base", server.url + "/v1",
                       "--iterations", "1", "--samples", "2", "--sandbox", "process", "--out", str(out), "--json",
                       env=env, cwd=tmp_path)
    # not "the LLM is not usable" (exit 2): the run went on, and trained nothing (exit 1)
    assert proc.returncode == 1, proc.stderr[-3000:]
    assert len(script.asked["preflight"]) == 3
    preflight = json.loads((out / "llm" / "000-response.json").read_text())
    assert preflight["attempts"] == 3 and "429" in preflight["errors"][0] and "503" in preflight["errors"][1]
    line = json.loads(proc.stdout.strip().splitlines()[-1])
    assert line["candidates"] == {"rejected": 2} and line["llm"]["retries"] >= 2
