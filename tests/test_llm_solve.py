"""End to end: `rewardsmith solve` with an LLM designer, through litellm, over real HTTP.

A local OpenAI- or Anthropic-compatible server answers from a script with broken answers among
good ones (no code, an unknown argument, a wrong shape, a reward the LLM critic vetoes, a
near-duplicate) and with 429/500 errors first. We check the run and what the server was asked.
"""

import json
import os

import pytest
from conftest import run_cli
from fake_llm_server import FakeLLMServer
from llm_script import (
    NO_CODE,
    PRODUCT,
    PRODUCT_SCALED,
    UNKNOWN_ARGUMENT,
    WEIGHTED_SUM,
    WRONG_SHAPE,
    Script,
    fenced,
)

SECRET = "sk-test-4b1d9e7f0c2a-secret"
def _env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(REWARDSMITH_CACHE_DIR=str(tmp_path / "cache"), **extra)
    return env


def _solve(model: str, base: str, out, env, *extra):
    return run_cli("solve", "tasks/cartpole.yaml", "--model", model, "--api-base", base, "--iterations", "2",
                   "--samples", "4", "--sandbox", "process", "--total-timesteps", "30000", "--out", str(out),
                   *extra, env=env)


def _statuses(summary, iteration):
    return sorted(c["status"] for c in summary["candidates"] if c["iteration"] == iteration)


def _no_secret_in(folder):
    for path in folder.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".py", ".log", ".yaml"):
            assert SECRET not in path.read_text(errors="replace"), path


def test_solve_with_openai_compatible_server(tmp_path):
    script = Script(designer=[
        429, 500,  # retried with backoff
        fenced(PRODUCT), NO_CODE, fenced(UNKNOWN_ARGUMENT), fenced(WRONG_SHAPE),       # iteration 1 (n=4)
        fenced(PRODUCT), fenced(PRODUCT_SCALED), fenced(WEIGHTED_SUM), fenced(WEIGHTED_SUM),  # iteration 2
    ])
    out = tmp_path / "run"
    with FakeLLMServer(script) as server:
        proc = _solve("openai/gpt-4o-mini", server.url + "/v1", out, _env(tmp_path, OPENAI_API_KEY=SECRET),
                      "--llm-critic")
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "done" and summary["best"]["success"] is True
    assert summary["designer"] == "openai/gpt-4o-mini"
    # iteration 1: two fixes came back as PRODUCT scaled by 2, a near-duplicate: not trained
    assert _statuses(summary, 0) == ["ok", "ok", "skipped", "skipped"]
    # iteration 2: rewards already trained (identical or scaled) are not trained again
    assert _statuses(summary, 1) == ["skipped"] * 4
    skipped = [c for c in summary["candidates"] if c["status"] == "skipped"]
    assert all("nearly the same reward as iteration" in c["reason"] for c in skipped)
    llm = summary["llm"]
    assert llm["retries"] >= 2 and llm["cost_usd"] > 0 and llm["prompt_tokens"] > 0
    assert "LLM:" in proc.stdout

    asked = script.asked
    assert all(r.path == "/v1/chat/completions" for r in server.received)
    assert all(r.headers["authorization"] == f"Bearer {SECRET}" for r in server.received)
    designs = asked["designer"]
    assert [r.body.get("n") for r in designs] == [4, 4, 4, 4]  # 429, 500, iteration 1, iteration 2
    first = designs[0]
    assert "Keep the pole balanced upright" in first.last_user
    for name in ("cart_pos", "cart_vel", "pole_angle", "pole_vel"):
        assert name in first.last_user  # the env's named description
    assert "def compute_reward(cart_pos: torch.Tensor, cart_vel: torch.Tensor" in first.system  # the contract
    assert "(num_envs,)" in first.system

    fixes = [r.last_user for r in asked["fix"]]
    assert any("no Python code" in f for f in fixes)
    assert any("unknown argument 'pole_angel'" in f for f in fixes)
    assert any("has shape (16, 1); expected (16,)" in f for f in fixes)
    assert any("it rewards falling" in f for f in fixes)  # the LLM critic's veto, quoted
    assert len(asked["critic"]) == 4  # each distinct reward that passed the dry run, once

    refinement = designs[-1].last_user
    assert "Iteration 1, candidate" in refinement and "task fitness" in refinement
    assert "upright" in refinement and "Values at" in refinement  # per-component statistics over training
    assert "ANALYZER-NOTE" in refinement  # the trajectory analyzer's summary
    assert len(asked["analyzer"]) == 1  # the best of iteration 1 (iteration 2 trained none)

    logs = sorted((out / "llm").glob("*-request.json"))
    assert len(logs) == len(server.received) - llm["retries"]  # one log per request; retries inside it
    first_log = json.loads(logs[0].read_text())
    assert first_log["purpose"] == "preflight"
    proposals = json.loads((out / "iter_00" / "proposals.json").read_text())
    reasons = [a["reason"] for p in proposals for a in p["origin"]["attempts"]]
    assert any("rewards falling" in r for r in reasons)
    critic = [json.loads(p.read_text()) for p in out.glob("iter_00/cand_*/critic.json")]
    assert all(c["ok"] and c["stage"] == "llm" for c in critic)
    _no_secret_in(out)


def test_solve_with_anthropic_compatible_server_streamed(tmp_path):
    script = Script(designer=[
        429, 500,
        fenced(PRODUCT), fenced(PRODUCT_SCALED), NO_CODE, fenced(WRONG_SHAPE),
        fenced(PRODUCT), fenced(PRODUCT), fenced(WEIGHTED_SUM), fenced(PRODUCT_SCALED),
    ])
    out = tmp_path / "run"
    with FakeLLMServer(script) as server:
        proc = _solve("anthropic/claude-sonnet-4-5", server.url, out,
                      _env(tmp_path, ANTHROPIC_API_KEY=SECRET, REWARDSMITH_LLM_STREAM="1"))
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "done" and summary["best"]["success"] is True
    assert _statuses(summary, 0) == ["ok", "ok", "skipped", "skipped"]
    assert _statuses(summary, 1) == ["skipped"] * 4
    assert summary["llm"]["retries"] >= 2 and summary["llm"]["cost_usd"] > 0

    assert all(r.path == "/v1/messages" and r.headers["x-api-key"] == SECRET for r in server.received)
    designs = script.asked["designer"]
    assert len(designs) == 10 and all(r.body.get("stream") is True and "n" not in r.body for r in designs)
    assert "Keep the pole balanced upright" in designs[0].last_user and "pole_vel" in designs[0].last_user
    fixes = [r.last_user for r in script.asked["fix"]]
    assert any("no Python code" in f for f in fixes) and any("shape (16, 1)" in f for f in fixes)
    assert "critic" not in script.asked  # the LLM critic is off by default
    assert "upright" in designs[-1].last_user and "ANALYZER-NOTE" in designs[-1].last_user
    _no_secret_in(out)


@pytest.mark.parametrize("model, base, env_key, words", [
    ("openai/gpt-4o-mini", None, None, "needs OPENAI_API_KEY"),
    ("anthropic/claude-sonnet-4-5", "http://127.0.0.1:9", "ANTHROPIC_API_KEY", "cannot reach http://127.0.0.1:9"),
    ("not-a-provider-model", None, None, "unknown model"),
])
def test_llm_problems_are_one_line_errors_before_anything_runs(tmp_path, model, base, env_key, words):
    env = _env(tmp_path, **({env_key: SECRET} if env_key else {}))
    args = ["solve", "tasks/cartpole.yaml", "--model", model, "--sandbox", "process", "--out", str(tmp_path / "o")]
    proc = run_cli(*args, *(["--api-base", base] if base else []), env=env)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]  # (after the --sandbox process warning)
    assert last.startswith("error: ") and words in last
    assert not (tmp_path / "o").exists()


def test_max_cost_stops_cleanly(tmp_path):
    out = tmp_path / "run"
    with FakeLLMServer(Script()) as server:
        proc = run_cli("solve", "tasks/cartpole.yaml", "--model", "openai/gpt-4o-mini", "--api-base",
                       server.url + "/v1", "--sandbox", "process", "--out", str(out), "--max-cost", "0.000001",
                       env=_env(tmp_path, OPENAI_API_KEY=SECRET))
    assert proc.returncode == 0, proc.stderr[-2000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "stopped" and "--max-cost" in summary["stopped_reason"]
    assert summary["candidates"] == [] and summary["llm"]["requests"] == 1  # the preflight spent the budget
    assert len(server.received) == 1
    assert "Stopped:" in proc.stdout and f"--resume {out}" in proc.stdout.replace("\n", "")
