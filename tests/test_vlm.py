"""The VLM judge: contact sheets of the recorded episodes, the request through the real client path
(litellm over HTTP to the loopback test server), the answer read or followed up, the cache, the
one-line errors, and a person's ranking winning over the model's."""

import io
import json
import os
import shutil

import pytest
from conftest import run_cli
from fake_llm_server import FakeLLMServer
from fake_run import make_run
from llm_script import Script, shown_candidates, vlm_ranking
from PIL import Image

from rewardsmith.designer import DesignRequest
from rewardsmith.designer.context import design_messages
from rewardsmith.errors import FeedbackPending, LLMError
from rewardsmith.feedback import make_feedback
from rewardsmith.feedback.frames import contact_sheet
from rewardsmith.feedback.ranking import ranking_feedback
from rewardsmith.feedback.vlm import SHEET_FILE, check_vision
from rewardsmith.feedback.vlm_answer import AnswerProblem, parse_verdict
from rewardsmith.llm import make_llm
from rewardsmith.runs import RunDir
from rewardsmith.schemas import IterationRecord, Ranking
from rewardsmith.task import load_task

TASK = load_task("tasks/cartpole.yaml")
SECRET = "sk-test-vlm-5e1f0a9b2c7d"
TRAINED = [0, 1, 3]  # fake_run: candidate 2 failed and has no episode
PROVIDERS = {"openai": ("openai/gpt-4o-mini", "/v1", "OPENAI_API_KEY"),
             "anthropic": ("anthropic/claude-sonnet-4-5", "", "ANTHROPIC_API_KEY")}


@pytest.fixture(scope="module")
def template(tmp_path_factory):
    return make_run(tmp_path_factory.mktemp("template") / "run").path


@pytest.fixture
def run(template, tmp_path) -> RunDir:
    shutil.copytree(template, tmp_path / "run")
    return RunDir(tmp_path / "run")


@pytest.fixture
def keys(monkeypatch):
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.setenv(name, SECRET)


def _record(run: RunDir) -> IterationRecord:
    return IterationRecord(iteration=0, candidates=[run.load_result(0, c.index) for c in run.load_proposals(0)])


def _client(server: FakeLLMServer, provider: str, cache, **options):
    model, path, _ = PROVIDERS[provider]
    return make_llm(model, api_base=server.url + path, cache_dir=str(cache), **options)


def _judge(run: RunDir, client):
    client.attach(run.path / "llm")
    return make_feedback("vlm", run_path=run.path, vlm=client).judge(_record(run), TASK)


# -- the frames -------------------------------------------------------------------------------


def test_contact_sheet_spreads_frames_over_the_episode(run):
    folder = run.candidate_dir(0, 3)
    sheet = contact_sheet(folder, "candidate 3", frames=6)
    assert sheet is not None and sheet.png.startswith(b"\x89PNG")
    assert sheet.steps[0] == 0 and sheet.steps[-1] == 11 and len(sheet.steps) == 6  # first and last of 12
    assert sheet.steps == sorted(set(sheet.steps))
    image = Image.open(io.BytesIO(sheet.png))
    assert image.size == (sheet.width, sheet.height) and sheet.width == 768 and sheet.height < 500
    assert len(sheet.png) < 60_000  # small enough to send one per candidate
    # the tiles show different moments: the pole leans further in the last one
    top_left = image.crop((4, 30, 250, 200)).tobytes()
    bottom_right = image.crop((516, 30 + 190, 762, 200 + 190)).tobytes()
    assert top_left != bottom_right
    assert contact_sheet(folder, "candidate 3", frames=3).steps == [0, 6, 11]
    assert contact_sheet(run.candidate_dir(0, 2), "candidate 2") is None  # failed: no recording


# -- reading the answer -------------------------------------------------------------------------


@pytest.mark.parametrize("text, best, worst, order", [
    ('{"best": 3, "worst": 0, "order": [3, 1, 0], "reasons": {"3": "a", "1": "b", "0": "c"}}', 3, 0, [3, 1, 0]),
    ('I watched them.\n```json\n{"best": "candidate 1", "worst": "Candidate 0", "reasons": '
     '[{"candidate": 1, "reason": "a"}, {"candidate": "0", "reason": "c"}]}\n```\nThanks.', 1, 0, []),
    ('{"Order": [1, 3, 0], "Reasons": {"1": " stays\\n up ", "0": "falls"}}', 1, 0, [1, 3, 0]),
    ('Sure! {"note": "first try"} and then {"best": 0.0, "worst": 3, "reasons": {"0": "x", "3": "y"}}', 0, 3, []),
])
def test_rankings_are_read_from_answers_as_models_write_them(text, best, worst, order):
    verdict = parse_verdict(text, TRAINED)
    assert (verdict.best, verdict.worst, verdict.order) == (best, worst, order)
    assert verdict.reasons[best] and verdict.reasons[worst] and "\n" not in verdict.reasons[best]


@pytest.mark.parametrize("text, problem", [
    ("Candidate 1 is clearly the best, candidate 0 the worst.", "no JSON object"),
    ('{"best": 7, "worst": 0, "reasons": {"7": "a", "0": "b"}}', "candidate 7, which was not shown (the candidates "
                                                                  "are 0, 1, 3)"),
    ('{"best": 1, "worst": 1, "reasons": {"1": "a"}}', "both candidate 1"),
    ('{"best": 1, "worst": 0, "order": [1, 1, 0], "reasons": {"1": "a", "0": "b"}}', "candidate 1 more than once"),
    ('{"best": 1, "worst": 0, "order": [1, 0], "reasons": {"1": "a", "0": "b"}}', "leaves out candidate 3"),
    ('{"best": 3, "worst": 0, "order": [1, 3, 0], "reasons": {"3": "a", "0": "b"}}', "runs from 1 to 0"),
    ('{"best": 1, "reasons": {"1": "a"}}', "names no worst"),
    ('{"best": 1, "worst": 0, "reasons": {"1": "a"}}', "no sentence for candidate 0 (the worst)"),
    ('{"best": "the tall one", "worst": 0}', '"best" is "the tall one", not a candidate number'),
])
def test_an_unusable_answer_gets_a_sentence_saying_why(text, problem):
    with pytest.raises(AnswerProblem) as info:
        parse_verdict(text, TRAINED)
    assert problem in str(info.value)


# -- the request, through litellm over HTTP -------------------------------------------------------


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_the_request_carries_each_candidates_frames_as_images_in_the_providers_format(run, keys, tmp_path,
                                                                                       provider):
    script = Script()
    with FakeLLMServer(script) as server:
        feedback = _judge(run, _client(server, provider, tmp_path / "cache"))
    (request,) = script.asked["vlm"]
    sheets = [(run.candidate_dir(0, i) / SHEET_FILE).read_bytes() for i in TRAINED]
    assert [image.data for image in request.images] == sheets  # one sheet per trained candidate, in order
    assert all(image.kind == "png" and image.media_type == "image/png" for image in request.images)
    if provider == "openai":
        assert request.path == "/v1/chat/completions" and request.headers["authorization"] == f"Bearer {SECRET}"
        parts = request.body["messages"][-1]["content"]
        urls = [p["image_url"]["url"] for p in parts if p["type"] == "image_url"]
        assert len(urls) == 3 and all(u.startswith("data:image/png;base64,") for u in urls)
    else:
        assert request.path == "/v1/messages" and request.headers["x-api-key"] == SECRET
        blocks = [p for p in request.body["messages"][-1]["content"] if p["type"] == "image"]
        assert [b["source"]["type"] for b in blocks] == ["base64"] * 3
        assert request.body["system"][0]["text"].startswith("You are a judge of what trained policies do")
    assert shown_candidates(request) == TRAINED  # each image follows its candidate's name
    assert "Keep the pole balanced upright" in request.text and "fitness" not in request.text.lower()

    # the scripted model prefers the highest number: 3 > 1 > 0 (the fitness would say 1 > 0 > 3)
    assert (feedback.kind, feedback.best, feedback.worst, feedback.order) == ("vlm", 3, 0, [3, 1, 0])
    assert feedback.reasons[3].startswith("VLM-REASON 3") and PROVIDERS[provider][0] in feedback.note
    (ranking,) = run.load_rankings()
    assert (ranking.judge, ranking.model, ranking.best, ranking.reasons) == (
        "vlm", PROVIDERS[provider][0], 3, feedback.reasons)
    # the log names the images by file and hash; their bytes are not copied into it
    logged = next(json.loads(p.read_text()) for p in sorted((run.path / "llm").glob("*-request.json")))
    images = [part for part in logged["messages"][-1]["content"] if part["type"] == "image"]
    assert [i["file"] for i in images] == [f"iter_00/cand_{i:02d}/{SHEET_FILE}" for i in TRAINED]
    assert all(len(i["sha256"]) == 64 and "data" not in i for i in images)
    assert max(p.stat().st_size for p in (run.path / "llm").iterdir()) < 20_000
    assert all(SECRET not in p.read_text() for p in (run.path / "llm").iterdir())


def test_a_malformed_answer_is_followed_up_once_quoting_the_problem(run, keys, tmp_path):
    script = Script(vlm=["Candidate 1 looks best to me, candidate 0 worst."],
                    vlm_fix=[lambda r: vlm_ranking([1, 3, 0])])
    with FakeLLMServer(script) as server:
        client = _client(server, "openai", tmp_path / "cache")
        feedback = _judge(run, client)
    (fix,) = script.asked["vlm_fix"]
    assert "That answer cannot be used: it contains no JSON object" in fix.last_user
    assert "Candidate 1 looks best to me" in fix.text  # the answer it follows up, in the conversation
    assert len(fix.images) == 3
    assert (feedback.best, feedback.worst, feedback.order) == (1, 0, [1, 3, 0])
    assert client.usage.requests == 2


def test_two_unusable_answers_wait_for_a_person(run, keys, tmp_path):
    script = Script(vlm=['{"best": 2, "worst": 0}'], vlm_fix=['{"best": 2, "worst": 0}'])
    with FakeLLMServer(script) as server, pytest.raises(FeedbackPending) as info:
        _judge(run, _client(server, "openai", tmp_path / "cache"))
    message = str(info.value)
    assert "candidate 2, which was not shown" in message and f"rewardsmith rank {run.path}" in message
    assert info.value.exit_code == 3 and run.load_rankings() == []


def test_a_cached_answer_is_not_paid_for_twice_and_new_frames_are_asked_again(template, keys, tmp_path):
    cache = tmp_path / "cache"
    runs = []
    for name in ("first", "second", "changed"):
        shutil.copytree(template, tmp_path / name)
        runs.append(RunDir(tmp_path / name))
    # the third run's candidate 3 recorded another episode: its sheet, and so the request, differ
    shutil.copy(runs[2].candidate_dir(0, 0) / "rollout.gif", runs[2].candidate_dir(0, 3) / "rollout.gif")
    script = Script(vlm=[lambda r: vlm_ranking([1, 3, 0], "FIRST"), lambda r: vlm_ranking([0, 1, 3], "THIRD")])
    with FakeLLMServer(script) as server:
        paid = _client(server, "openai", cache)
        first = _judge(runs[0], paid)
        again = _client(server, "openai", cache)
        second = _judge(runs[1], again)
        assert len(script.asked["vlm"]) == 1  # answered from the cache
        changed = _client(server, "openai", cache)
        third = _judge(runs[2], changed)
    assert paid.usage.requests == 1 and paid.usage.cost_usd > 0
    assert (again.usage.requests, again.usage.cached, again.usage.cost_usd) == (0, 1, 0.0)
    assert second.order == first.order == [1, 3, 0] and second.reasons == first.reasons
    assert len(script.asked["vlm"]) == 2 and changed.usage.requests == 1 and third.best == 0


def test_a_persons_ranking_wins_and_the_model_is_not_asked(run, keys, tmp_path):
    run.save_ranking(Ranking(iteration=0, best=0, worst=3, time="t", judge="vlm", model="openai/gpt-4o-mini",
                             reasons={0: "an earlier VLM said so", 3: "x"}))
    run.save_ranking(Ranking(iteration=0, best=1, worst=0, time="later"))  # a person's
    with FakeLLMServer(Script()) as server:
        feedback = _judge(run, _client(server, "openai", tmp_path / "cache"))
        assert server.received == []
    assert (feedback.kind, feedback.best, feedback.worst) == ("human", 1, 0) and "later" in feedback.note


def test_a_ranking_saved_before_a_stop_is_used_again_without_asking(run, keys, tmp_path):
    run.save_ranking(Ranking(iteration=0, best=0, worst=3, time="t", judge="vlm", model="openai/gpt-4o-mini",
                             reasons={0: "SAVED-REASON", 3: "x"}))
    with FakeLLMServer(Script()) as server:
        feedback = _judge(run, _client(server, "openai", tmp_path / "cache"))
        assert server.received == []
    assert (feedback.kind, feedback.best, feedback.reasons[0]) == ("vlm", 0, "SAVED-REASON")


def test_the_designer_reads_the_vlms_reasons_as_a_persons_words(run):
    record = _record(run)
    judged = ranking_feedback(Ranking(iteration=0, best=3, worst=1, order=[3, 0, 1], time="t", judge="vlm",
                                      model="openai/gpt-4o-mini",
                                      reasons={3: "WORDS-3 the pole stays up", 0: "WORDS-0 drifts", 1: "WORDS-1 falls"}))
    history = [record.model_copy(update={"feedback": judged})]
    _, user = design_messages(DesignRequest(TASK, TASK.env.describe(), history, 1, 2))
    text = user[1]
    assert "A vision-language model watched" in text and "## Preferred: candidate 3" in text
    assert "## Least preferred: candidate 1" in text
    assert text.index("WORDS-3") < text.index("WORDS-0") < text.index("WORDS-1")  # best first
    assert "candidate 3 (preferred): WORDS-3" in text and "candidate 1 (least preferred): WORDS-1" in text
    assert "0.930" not in text and "fitness 0." not in text  # the judge saw no fitness; neither does the designer


# -- before anything runs -------------------------------------------------------------------------


def test_a_model_that_cannot_take_images_is_refused_before_any_request(keys, tmp_path):
    with FakeLLMServer(Script()) as server:
        client = make_llm("openai/o3-mini", api_base=server.url + "/v1", cache_dir="")
        with pytest.raises(LLMError, match="cannot take images .litellm's model list says so"):
            check_vision(client)
        assert server.received == []


def test_a_missing_key_names_the_vlms_flags(monkeypatch):
    monkeypatch.delenv("ANTHROPIC_API_KEY", raising=False)
    with pytest.raises(LLMError, match=r"needs ANTHROPIC_API_KEY in the environment \(or --vlm-api-base URL"):
        check_vision(make_llm("anthropic/claude-sonnet-4-5", cache_dir=""))


def test_a_server_that_refuses_images_is_a_one_line_error_and_nothing_is_written(tmp_path):
    def refuse_images(request):
        return (400, "this model does not support image input") if request.images else "OK"

    out = tmp_path / "run"
    env = {**os.environ, "OPENAI_API_KEY": SECRET, "REWARDSMITH_CACHE_DIR": str(tmp_path / "cache")}
    with FakeLLMServer(refuse_images) as server:
        proc = run_cli("solve", "tasks/cartpole.yaml", "--feedback", "vlm", "--vlm-model", "openai/text-only-model",
                       "--vlm-api-base", server.url + "/v1", "--sandbox", "process", "--out", str(out), env=env)
        (probe,) = server.received
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    last = proc.stderr.strip().splitlines()[-1]
    assert last.startswith("error: the VLM is not usable (a request with a 16x16 image)")
    assert "does not support image input" in last
    assert probe.images[0].kind == "png" and not out.exists()


@pytest.mark.parametrize("args, words", [
    (["--feedback", "vlm"], "--feedback vlm needs a vision-language model: --vlm-model MODEL"),
    (["--vlm-model", "openai/gpt-4o-mini"], "--vlm-model is used only with --feedback vlm"),
])
def test_vlm_options_are_checked_in_one_line(tmp_path, args, words):
    env = {k: v for k, v in os.environ.items() if not k.endswith("_API_KEY")}
    out = tmp_path / "run"
    proc = run_cli("solve", "tasks/cartpole.yaml", *args, "--sandbox", "process", "--out", str(out), env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert words in proc.stderr.strip().splitlines()[-1] and not out.exists()


def test_rankings_written_before_judges_existed_load_as_a_persons(run):
    (run.path / "rankings.jsonl").write_text('{"iteration": 0, "best": 1, "worst": 3, "order": [], "time": "old"}\n')
    (old,) = run.load_rankings()
    assert (old.judge, old.model, old.reasons) == ("person", None, {})
    assert run.latest_ranking(0, judge="person") == old and run.latest_ranking(0, judge="vlm") is None
