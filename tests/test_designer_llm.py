"""The LLM designer with a scripted model: sampling, code extraction, regeneration requests that
quote the critic's error, the prompts of later iterations (metric and preference feedback)."""

import re

import pytest
from conftest import GOOD_CARTPOLE_REWARD

from rewardsmith.critic import static_check
from rewardsmith.critic.duplicates import find_duplicate, similarity, spearman
from rewardsmith.critic.llm_review import parse_review
from rewardsmith.designer import DesignRequest
from rewardsmith.designer.context import design_messages, example_code
from rewardsmith.designer.extract import extract_code
from rewardsmith.designer.llm import LLMDesigner
from rewardsmith.llm.client import LLMClient
from rewardsmith.llm.scripted import ScriptedBackend
from rewardsmith.prompting import NAMES, template
from rewardsmith.schemas import (
    Analysis,
    CandidateResult,
    CriticVerdict,
    EvalSummary,
    Feedback,
    Finding,
    IterationRecord,
    Stats,
    TrainCheckpoint,
    TrainLog,
)
from rewardsmith.task import load_task

TASK = load_task("tasks/cartpole.yaml")
ENV = TASK.env.describe()


def fenced(code):
    return f"My idea: reward being upright.\n```python\n{code.strip()}\n```"


UNKNOWN = "import torch\ndef compute_reward(pole_angel):\n    return pole_angel, {'a': pole_angel}\n"


def request(history=(), samples=3, check=None):
    return DesignRequest(TASK, ENV, list(history), len(history), samples, check=check)


def test_designer_asks_for_fixes_that_quote_the_error():
    def fixed(req):
        error = req.messages[-1].content
        assert req.messages[-2].role == "assistant"  # the broken answer stays in the conversation
        if "unknown argument 'pole_angel'" in error:
            assert "cart_pos, cart_vel, pole_angle, pole_vel, action" in error  # the allowed names
            return fenced(GOOD_CARTPOLE_REWARD.replace("0.2)", "0.3)"))
        assert "no Python code" in error
        return fenced(GOOD_CARTPOLE_REWARD.replace("0.2)", "0.25)"))

    backend = ScriptedBackend([fenced(GOOD_CARTPOLE_REWARD), "Just keep it upright!", fenced(UNKNOWN), fixed, fixed])
    designer = LLMDesigner(LLMClient(backend))
    notes = []
    req = DesignRequest(TASK, ENV, [], 0, 3, notify=notes.append)
    candidates = designer.propose(req)
    assert [c.index for c in candidates] == [0, 1, 2]
    assert all(static_check(c.code, ENV.reward_arguments).ok for c in candidates)
    assert len({c.code for c in candidates}) == 3
    assert backend.requests[0].n == 3 and len(backend.requests) == 3
    assert [len(c.origin["attempts"]) for c in candidates] == [0, 1, 1]
    assert "unknown argument 'pole_angel'" in candidates[2].origin["attempts"][0]["reason"]
    assert len(notes) == 3 and "asking for a fix" in notes[1]


def test_designer_hands_over_what_still_fails_after_its_fix_rounds():
    backend = ScriptedBackend([fenced(UNKNOWN)] * 6)
    candidates = LLMDesigner(LLMClient(backend), fix_rounds=2).propose(request(samples=2))
    assert len(backend.requests) == 1 + 2 * 2 and not backend.queue
    assert all("unknown argument" in c.origin["error"] and len(c.origin["attempts"]) == 2 for c in candidates)


def test_designer_uses_the_loops_critic():
    verdicts = []

    def check(code):
        verdict = CriticVerdict(ok="0.2)" not in code, stage="llm", reason="the upright scale is too sharp")
        verdicts.append(verdict)
        return verdict

    backend = ScriptedBackend([fenced(GOOD_CARTPOLE_REWARD), fenced(GOOD_CARTPOLE_REWARD.replace("0.2)", "0.4)"))])
    [candidate] = LLMDesigner(LLMClient(backend)).propose(request(samples=1, check=check))
    assert "0.4)" in candidate.code and len(verdicts) == 2
    assert "the upright scale is too sharp" in backend.requests[1].messages[-1].content


# -- what later prompts carry ---------------------------------------------------------------------


def _result(iteration, index, fitness, code_scale, summary=None):
    cps = [TrainCheckpoint(step=1000 * (i + 1), wall_s=float(i), reward=Stats(mean=0.5 + i / 10, std=0.1, min=0, max=1),
                           components={"upright": Stats(mean=0.4 + i / 100, std=0.1, min=0, max=1),
                                       "centered": Stats(mean=0.9, std=0.01, min=0.8, max=1)},
                           episodes=10, fitness=fitness * i / 9, episode_length=50.0 + 40 * i)
           for i in range(10)]
    ev = EvalSummary(fitness=fitness, success=fitness >= 0.95, episodes=4, fitness_per_episode=[fitness] * 4,
                     episode_length=Stats(mean=480, std=5, min=470, max=500), terminations={"time_limit": 4},
                     variables={"pole_angle": Stats(mean=0.01, std=0.02, min=-0.05, max=0.06)})
    findings = [Finding(kind="no_progress", detail="task fitness stayed at 0.123 during training"),
                Finding(kind="constant", component="centered", detail="'centered' is nearly constant")]
    return CandidateResult(iteration=iteration, index=index, status="ok", fitness=fitness, success=fitness >= 0.95,
                           reward_file="r.py", code=GOOD_CARTPOLE_REWARD.replace("0.2)", f"{code_scale})"),
                           train=TrainLog(checkpoints=cps, env_steps=10000, wall_s=10, steps_per_s=1000), eval=ev,
                           analysis=Analysis(findings=findings, text=f"Task fitness {fitness}", llm_summary=summary))


def _history(kind):
    history = []
    for it in range(4):
        results = [_result(it, 0, 0.6131 + it / 100, round(0.1 + it / 10, 2), summary=f"SUMMARY-{it}"),
                   _result(it, 1, 0.2417, 0.9),
                   CandidateResult(iteration=it, index=2, status="rejected", reason="critic: unknown argument 'x'",
                                   reward_file="r.py")]
        feedback = Feedback(iteration=it, kind=kind, best=0, worst=1, order=[0, 1])
        history.append(IterationRecord(iteration=it, candidates=results, feedback=feedback))
    return history


def test_refinement_prompt_keeps_the_best_of_the_last_iterations():
    system, user = [text for _, text in design_messages(request(_history("metric")))]
    assert "compute_reward(cart_pos: torch.Tensor, cart_vel: torch.Tensor, action" in system
    for it in (2, 3, 4):  # the last three iterations' best rewards, not the first
        assert f"Iteration {it}, candidate 0: task fitness" in user and f"SUMMARY-{it - 1}" in user
    assert "Iteration 1, candidate 0" not in user and "SUMMARY-0" not in user
    assert "Task fitness on 4 evaluation episodes: 0.643" in user  # the analyzer's reflection
    assert "Training: 10000 env steps. Values at 10 checkpoints" in user  # no wall-clock times: cacheable
    assert "Success rate: 0 of 4 evaluation episodes" in user
    assert "candidate 2: rejected: critic: unknown argument 'x'" in user
    assert "- candidate 1: task fitness 0.242 (not solved)" in user


def test_preference_prompt_shows_best_worst_and_history_without_scores():
    user = design_messages(request(_history("human")))[1][1]
    assert "candidate 0" in user and "candidate 1" in user
    assert "0.4)" in user and "0.9)" in user  # the preferred and the least preferred code
    assert re.search(r"upright\s+0\.4 0\.41 0\.42", user)  # component traces over training
    assert "episode length" in user and "time_limit" in user
    assert "SUMMARY-3" in user
    assert "-    upright = torch.exp(-pole_angle.abs() / 0.3)" in user  # each chosen reward as a diff
    assert "+    upright = torch.exp(-pole_angle.abs() / 0.4)" in user
    for leak in ("fitness", "0.6431", "0.2417", "solved", "success"):
        assert leak not in user.lower(), leak


def test_preference_prompt_after_an_iteration_without_a_choice_still_hides_scores():
    history = _history("synthetic")
    failed = [c.model_copy(update={"status": "failed", "reason": "timeout: still running after 300 s"})
              for c in history[-1].candidates[:2]]
    history[-1] = IterationRecord(iteration=3, candidates=failed,
                                  feedback=Feedback(iteration=3, kind="synthetic", best=None))
    user = design_messages(request(history))[1][1]
    assert "timeout: still running" in user and "Iteration 3, candidate 0" in user  # the earlier choices
    assert "fitness" not in user.lower() and "0.6" not in user


def test_first_prompt_has_the_task_the_env_and_an_example_in_the_contract():
    system, user = [text for _, text in design_messages(request())]
    assert TASK.description.strip() in user and ENV.to_text() in user
    assert "(num_envs,)" in system and "```python" in system
    code = example_code(ENV)
    assert static_check(code, ENV.reward_arguments).ok


def test_every_template_loads():
    for name in NAMES:
        assert template(name).template.strip()


# -- small pieces ---------------------------------------------------------------------------------


@pytest.mark.parametrize("answer, expected", [
    ("```python\ndef compute_reward(x):\n    return x, {}\n```", "def compute_reward(x):"),
    ("```\nimport torch\ndef compute_reward(x):\n    return torch.tanh(x), {}\n```", "import torch"),
    ("~~~py\ndef compute_reward(x):\n    return x, {}\n~~~", "def compute_reward(x):"),
    ("Cut off:\n```python\ndef compute_reward(x):\n    return x, {}", "def compute_reward(x):"),
    ("No fences.\n\nimport torch\n\ndef compute_reward(x):\n    return x, {}\n\nThat is it.", "import torch"),
    ("<think>```python\ndef compute_reward(wrong):\n```</think>\n```python\ndef compute_reward(right):\n"
     "    return right, {}\n```", "def compute_reward(right):"),
    ("```python\ndef helper(): pass\n```\n```python\ndef compute_reward(second):\n    return second, {}\n```",
     "def compute_reward(second):"),
])
def test_extract_code(answer, expected):
    code = extract_code(answer)
    assert code is not None and expected in code
    compile(code, "reward.py", "exec")


def test_extract_code_adds_a_missing_torch_import_and_finds_nothing_in_prose():
    assert extract_code("```python\ndef compute_reward(x):\n    return torch.exp(x), {}\n```").startswith("import torch\n")
    assert extract_code("```python\nprint('hello')\n```") is None
    assert extract_code("") is None


@pytest.mark.parametrize("answer, ok, words", [
    ('{"verdict": "reject", "reasons": ["wrong sign on upright"]}', False, "wrong sign on upright"),
    ('Review:\n```json\n{"verdict": "accept", "reasons": ["a small concern"]}\n```', True, "a small concern"),
    ("I think it is fine.", True, "could not be read"),
])
def test_parse_review(answer, ok, words):
    verdict = parse_review(answer)
    assert verdict.ok is ok and verdict.stage == "llm"
    assert words in (verdict.reason or "") + " ".join(verdict.warnings)


def test_spearman_and_duplicates():
    base = [0.1, 0.5, 0.3, 0.9, 0.7]
    assert spearman(base, [2 * x + 1 for x in base]) == pytest.approx(1.0)  # scaled: same ranking
    assert spearman(base, [-x for x in base]) == pytest.approx(-1.0)
    assert spearman([1, 1, 1], [2, 2, 2]) == 1.0 and spearman([1, 1, 1], [1, 2, 3]) == 0.0
    assert spearman([1, 2, 2, 3], [1, 2, 2, 3]) == pytest.approx(1.0)  # ties
    trained = {(0, 0): [0.5, 0.1, 0.9, 0.3, 0.7], (0, 1): base}
    assert find_duplicate([x * 3 for x in base], trained, 0.9999)[0] == (0, 1)
    assert find_duplicate([0.9, 0.1, 0.5, 0.3, 0.7], trained, 0.9999) is None
    # a reshaping that keeps the order (a sharper temperature) is not a duplicate: it trains differently
    sharper = [x ** 4 for x in base]
    assert spearman(base, sharper) == pytest.approx(1.0) and similarity(base, sharper) < 0.99
    assert find_duplicate(sharper, trained, 0.9999) is None
