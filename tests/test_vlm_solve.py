"""End to end: `rewardsmith solve --feedback vlm` with a VLM judge behind the loopback test server
(OpenAI and Anthropic formats), the VLM's ranking steering the next design, and a person
overruling it before a resume."""

import json
import os

import pytest
from conftest import run_cli
from fake_llm_server import FakeLLMServer
from llm_script import PRODUCT, WEIGHTED_SUM, Script, fenced, shown_candidates

from rewardsmith.runs import RunDir
from rewardsmith.schemas import Ranking

SECRET = "sk-test-vlm-solve-7d3c1e"
FAST = ["--samples", "2", "--total-timesteps", "2048", "--sandbox", "process"]


def _env(tmp_path, **extra):
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    env.update(REWARDSMITH_CACHE_DIR=str(tmp_path / "cache"), OPENAI_API_KEY=SECRET, ANTHROPIC_API_KEY=SECRET,
               **extra)
    return env


def _sheets_received(out, request, iteration=0):
    """The candidates whose contact sheet the request carried (by the bytes saved beside them)."""
    saved = {p.parent.name: p.read_bytes() for p in out.glob(f"iter_{iteration:02d}/cand_*/vlm_frames.png")}
    return sorted(name for name, data in saved.items() if any(image.data == data for image in request.images))


@pytest.mark.parametrize("vlm", ["openai", "anthropic"])
def test_solve_with_a_vlm_judge_steers_the_next_design_with_its_reasons(tmp_path, vlm):
    # iteration 1: two different rewards; iteration 2: the designer's default answers are duplicates
    script = Script(designer=[fenced(PRODUCT), fenced(WEIGHTED_SUM)])
    out = tmp_path / "run"
    with FakeLLMServer(script) as server:
        model, base = {"openai": ("openai/gpt-4o-mini", server.url + "/v1"),
                       "anthropic": ("anthropic/claude-sonnet-4-5", server.url)}[vlm]
        extra = {"REWARDSMITH_LLM_STREAM": "1"} if vlm == "anthropic" else {}
        proc = run_cli("solve", "tasks/cartpole.yaml", "--model", "openai/gpt-4o-mini", "--api-base",
                       server.url + "/v1", "--feedback", "vlm", "--vlm-model", model, "--vlm-api-base", base,
                       "--iterations", "2", *FAST, "--out", str(out), env=_env(tmp_path, **extra))
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["status"] == "done"
    trained = sorted(c["index"] for c in summary["candidates"] if c["iteration"] == 0 and c["status"] == "ok")
    assert trained == [0, 1]

    # the judge was shown a PNG contact sheet of each trained candidate, in its provider's format
    (asked,) = script.asked["vlm"]  # iteration 2 trained nothing new: no second question
    assert shown_candidates(asked) == [0, 1] and _sheets_received(out, asked) == ["cand_00", "cand_01"]
    assert all(image.kind == "png" for image in asked.images) and len(asked.images) == 2
    if vlm == "openai":
        assert asked.path == "/v1/chat/completions" and {i.format for i in asked.images} == {"image_url"}
    else:
        assert asked.path == "/v1/messages" and {i.format for i in asked.images} == {"image"}
        assert asked.headers["x-api-key"] == SECRET and asked.body.get("stream") is True
    (probe,) = [r for r in script.asked["preflight"] if r.images]
    assert probe.path == asked.path  # the VLM was checked with an image before anything trained

    # its ranking is saved like a person's, marked as the VLM's, and is iteration 1's feedback
    (ranking,) = [json.loads(line) for line in (out / "rankings.jsonl").read_text().splitlines()]
    assert (ranking["judge"], ranking["model"], ranking["best"], ranking["worst"]) == ("vlm", model, 1, 0)
    feedback = json.loads((out / "iter_00" / "feedback.json").read_text())
    assert (feedback["kind"], feedback["best"]) == ("vlm", 1) and feedback["reasons"] == ranking["reasons"]
    assert "best of iteration 1 (the VLM's choice): candidate 1" in proc.stderr

    # the second design prompt prefers the VLM's choice and carries its reasons
    second = script.asked["designer"][1].last_user
    assert "A vision-language model watched" in second and "## Preferred: candidate 1" in second
    assert "candidate 1 (preferred): VLM-REASON 1" in second and "candidate 0 (least preferred): VLM-REASON 0" in second
    assert "task fitness" not in second

    # one tally and one log for the designer and the judge
    assert summary["llm"]["requests"] == len(server.received) and summary["llm"]["cost_usd"] > 0
    purposes = [json.loads(p.read_text())["purpose"] for p in sorted((out / "llm").glob("*-request.json"))]
    assert purposes[:2] == ["preflight", "preflight VLM"] and "vlm rank iteration 1" in purposes
    assert len(purposes) == len(server.received)
    for path in out.rglob("*"):
        if path.is_file() and path.suffix in (".json", ".jsonl", ".log", ".yaml", ".py"):
            assert SECRET not in path.read_text(errors="replace"), path


def test_builtin_designer_with_a_vlm_judge_then_a_person_overrules_it(tmp_path):
    out = tmp_path / "run"
    env = _env(tmp_path)
    script = Script()
    with FakeLLMServer(script) as server:
        base = server.url + "/v1"
        proc = run_cli("solve", "tasks/cartpole.yaml", "--feedback", "vlm", "--vlm-model", "openai/gpt-4o-mini",
                       "--vlm-api-base", base, "--iterations", "1", *FAST, "--out", str(out), env=env)
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert json.loads((out / "iter_00" / "feedback.json").read_text())["best"] == 1  # the VLM's choice
        assert _sheets_received(out, script.asked["vlm"][0]) == ["cand_00", "cand_01"]

        RunDir(out).save_ranking(Ranking(iteration=0, best=0, worst=1, time="2026-12-01T12:00:00"))  # as `rank` saves
        proc = run_cli("solve", "--resume", str(out), "--iterations", "2", "--samples", "1", "--sandbox", "process",
                       env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "a person's ranking (best 0) replaces the vlm judgement (best 1)" in proc.stderr
    feedback = json.loads((out / "iter_00" / "feedback.json").read_text())
    assert (feedback["kind"], feedback["best"], feedback["worst"]) == ("human", 0, 1)
    refined = json.loads((out / "iter_01" / "proposals.json").read_text())
    assert refined[0]["origin"]["notes"][0] == "refined from iteration 0 candidate 0"
    assert len(script.asked["vlm"]) == 1  # iteration 2 has one candidate: nothing to compare, no question
    assert json.loads((out / "summary.json").read_text())["status"] == "done"
