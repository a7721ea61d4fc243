"""The LLM seam: litellm over real HTTP against a local server, the client's cache, retries,
budget and logs, and the scripted backend."""

import json
from collections import deque

import pytest
from fake_llm_server import FakeLLMServer

from rewardsmith.errors import BudgetExceeded, LLMError
from rewardsmith.llm import TransientLLMError, make_llm
from rewardsmith.llm.client import LLMClient
from rewardsmith.llm.litellm_backend import LiteLLMBackend
from rewardsmith.llm.scripted import ScriptedBackend
from rewardsmith.schemas import LLMRequest

ASK = LLMRequest.chat(("system", "You answer briefly."), ("user", "Name a colour."))


@pytest.fixture
def server():
    answers = deque()
    srv = FakeLLMServer(lambda request: answers.popleft() if answers else f"echo {request.last_user}")
    srv.answers = answers
    with srv:
        yield srv


@pytest.mark.parametrize("stream", [False, True])
def test_openai_format_plain_and_streamed_with_n(server, stream, monkeypatch):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    server.answers.extend(["red", "green", "blue"])
    backend = LiteLLMBackend("openai/gpt-4o-mini", api_base=server.url + "/v1", stream=stream)
    assert backend.supports_n
    reply = backend.complete(ASK.model_copy(update={"n": 3}))
    assert reply.texts == ["red", "green", "blue"]
    assert reply.prompt_tokens > 0 and reply.completion_tokens > 0 and reply.cost_usd > 0
    body = server.received[-1].body
    assert body["n"] == 3 and body["messages"][1]["content"] == "Name a colour." and body.get("stream", False) == stream
    assert server.received[-1].headers["authorization"] == "Bearer no-key"  # no key set: a placeholder


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_format_plain_and_streamed(server, stream, monkeypatch):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-0123456789")
    server.answers.append("a long answer " * 20)
    backend = LiteLLMBackend("anthropic/claude-sonnet-4-5", api_base=server.url, stream=stream)
    assert not backend.supports_n
    reply = backend.complete(ASK)
    assert reply.texts == ["a long answer " * 20]
    assert reply.completion_tokens == len("a long answer " * 20) // 4  # the server's own count
    received = server.received[-1]
    assert received.path == "/v1/messages" and received.headers["x-api-key"] == "sk-ant-test-0123456789"
    assert received.body["system"][0]["text"] == "You answer briefly."


def test_client_retries_429_and_500_then_answers(server, tmp_path):
    server.errors.extend([429, 500])
    client = LLMClient(LiteLLMBackend("openai/gpt-4o-mini", api_base=server.url + "/v1"), cache_dir=tmp_path / "c",
                       backoff_s=0.01)
    client.attach(tmp_path / "llm")
    [answer] = client.complete(ASK, purpose="test")
    assert answer.text == "echo Name a colour."
    assert len(server.received) == 3
    assert client.usage.retries == 2 and client.usage.requests == 1
    response = json.loads((tmp_path / "llm" / "000-response.json").read_text())
    assert response["attempts"] == 3 and "429" in response["errors"][0] and "500" in response["errors"][1]


def test_client_gives_up_after_its_attempts(server, tmp_path):
    server.errors.extend([503] * 3)
    client = LLMClient(LiteLLMBackend("openai/gpt-4o-mini", api_base=server.url + "/v1"), cache_dir=None,
                       backoff_s=0.01, max_attempts=3)
    with pytest.raises(LLMError, match=r"answered 503.*gave up after 3 attempts"):
        client.complete(ASK)


def test_cache_answers_a_repeated_request_without_the_server(server, tmp_path):
    def client():
        return LLMClient(LiteLLMBackend("openai/gpt-4o-mini", api_base=server.url + "/v1"), cache_dir=tmp_path)

    first = client()
    assert [a.text for a in first.complete(ASK, n=2)] == ["echo Name a colour."] * 2
    second = client()  # a re-run or a resume: a new process, the same cache folder
    assert [a.text for a in second.complete(ASK, n=2)] == ["echo Name a colour."] * 2
    assert len(server.received) == 1
    assert second.usage.cached == 1 and second.usage.requests == 0 and second.usage.cost_usd == 0
    other = ASK.model_copy(update={"temperature": 0.5})
    second.complete(other)
    assert len(server.received) == 2  # a different request is not served from the cache


def test_preflight_reports_a_rejected_key_in_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-wrong-key-123456789")
    srv = FakeLLMServer(lambda request: 401)
    with srv:
        client = make_llm("openai/gpt-4o-mini", api_base=srv.url + "/v1", cache_dir="")
        with pytest.raises(LLMError) as info:
            client.preflight()
    message = str(info.value)
    assert "rejected the credentials" in message and "OPENAI_API_KEY" in message and "\n" not in message
    assert "sk-wrong-key-123456789" not in message


def test_preflight_waits_out_a_rate_limit_and_a_server_error_as_the_server_asks(tmp_path, monkeypatch):
    import email.utils
    import time

    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-0123456789")
    srv = FakeLLMServer(lambda request: "OK")
    # Retry-After as an HTTP date (about 2 s ahead, whole seconds), then in seconds
    srv.errors.extend([(429, {"retry-after": email.utils.formatdate(time.time() + 2.5, usegmt=True)}),
                       (503, {"retry-after": "1"})])
    with srv:
        client = make_llm("openai/gpt-4o-mini", api_base=srv.url + "/v1", cache_dir="")
        client.attach(tmp_path / "llm")
        start = time.monotonic()
        client.preflight()
        waited = time.monotonic() - start
    assert len(srv.received) == 3 and client.usage.retries == 2 and client.usage.requests == 1
    assert waited >= 2.0  # at least the date's whole seconds plus the 1 s asked for; no blind fast retries
    log = json.loads((tmp_path / "llm" / "000-response.json").read_text())
    assert log["attempts"] == 3 and "429" in log["errors"][0] and "503" in log["errors"][1]


def test_preflight_fails_fast_only_when_the_server_cannot_be_reached():
    refused = ScriptedBackend([TransientLLMError("cannot reach http://127.0.0.1:9: refused", connection=True)])
    with pytest.raises(LLMError, match="not usable: cannot reach"):
        LLMClient(refused, backoff_s=0.001).preflight()
    assert len(refused.requests) == 1  # not retried
    busy = ScriptedBackend([TransientLLMError("answered 429"), TransientLLMError("answered 500"), "OK"])
    client = LLMClient(busy, backoff_s=0.001)
    client.preflight()
    assert len(busy.requests) == 3 and client.usage.retries == 2


def test_retry_after_forms():
    from rewardsmith.llm.litellm_backend import retry_after_seconds

    assert retry_after_seconds(None, "3") == 3.0 and retry_after_seconds("250", None) == 0.25
    assert retry_after_seconds(None, "Wed, 21 Oct 2015 07:28:30 GMT", now=1445412505.0) == 5.0
    assert retry_after_seconds(None, "Wed, 21 Oct 2015 07:28:30 GMT", now=1445412600.0) == 0.0  # in the past
    assert retry_after_seconds(None, "later") is None and retry_after_seconds(None, None) is None
    client = LLMClient(ScriptedBackend(), backoff_max_s=30.0)
    assert client._delay(1, 90.0) == 90.0 and client._delay(1, 1e6) == client.retry_after_max_s


def test_scripted_fan_out_when_the_provider_has_no_n(tmp_path):
    backend = ScriptedBackend(["a", "b", "c"], supports_n=False)
    client = LLMClient(backend, cache_dir=tmp_path)
    assert sorted(a.text for a in client.complete(ASK, n=3)) == ["a", "b", "c"]
    assert len(backend.requests) == 3 and all(r.n == 1 for r in backend.requests)
    again = LLMClient(ScriptedBackend([], supports_n=False), cache_dir=tmp_path)
    assert sorted(a.text for a in again.complete(ASK, n=3)) == ["a", "b", "c"]  # each sample cached apart


def test_transient_errors_are_retried_and_others_are_not():
    backend = ScriptedBackend([TransientLLMError("busy"), "fine", LLMError("bad request")])
    client = LLMClient(backend, backoff_s=0.001)
    assert client.complete(ASK)[0].text == "fine"
    with pytest.raises(LLMError, match="bad request"):
        client.complete(ASK.model_copy(update={"temperature": 0.0}))
    assert len(backend.requests) == 3 and client.usage.retries == 1


def test_max_cost_stops_before_the_request_that_would_exceed_it():
    backend = ScriptedBackend(["x" * 400] * 5, cost_per_token=0.001)
    client = LLMClient(backend, max_cost=0.15)
    client.complete(ASK)
    assert client.usage.cost_usd == pytest.approx(0.001 * (len("You answer briefly.Name a colour.") // 4 + 100))
    client.complete(ASK.model_copy(update={"temperature": 0.1}))
    with pytest.raises(BudgetExceeded, match="--max-cost"):
        client.complete(ASK.model_copy(update={"temperature": 0.2}))
    assert len(backend.requests) == 2


def test_logs_hold_every_exchange_and_no_key(tmp_path, monkeypatch):
    monkeypatch.setenv("MY_PROVIDER_API_KEY", "sk-very-secret-value")
    backend = ScriptedBackend(["early", "late", LLMError("refused: sk-very-secret-value")])
    client = LLMClient(backend)
    client.complete(ASK, purpose="before the run dir exists")
    client.attach(tmp_path / "llm")
    client.complete(LLMRequest.chat(("user", "second")), purpose="designer")
    with pytest.raises(LLMError):
        client.complete(LLMRequest.chat(("user", "third")), purpose="critic")
    files = sorted(p.name for p in (tmp_path / "llm").iterdir())
    assert files == [f"{i:03d}-{kind}.json" for i in range(3) for kind in ("request", "response")]
    first = json.loads((tmp_path / "llm" / "000-request.json").read_text())
    assert first["purpose"] == "before the run dir exists" and first["messages"][1]["content"] == "Name a colour."
    assert json.loads((tmp_path / "llm" / "001-response.json").read_text())["texts"] == ["late"]
    failed = (tmp_path / "llm" / "002-response.json").read_text()
    assert "refused" in failed and "sk-very-secret-value" not in failed
    backend.enqueue("fourth")
    LLMClient(backend).attach(tmp_path / "llm")  # a resumed run: a new client goes on numbering
    resumed = LLMClient(backend)
    resumed.attach(tmp_path / "llm")
    resumed.complete(LLMRequest.chat(("user", "fourth")))
    assert (tmp_path / "llm" / "003-response.json").is_file()


def test_the_host_imports_litellm_only_when_a_model_is_used():
    import subprocess
    import sys

    code = ("import sys, rewardsmith.cli, rewardsmith.api, rewardsmith.loop, rewardsmith.designer.llm, "
            "rewardsmith.critic.llm_review, rewardsmith.analyzer.llm\n"
            "assert 'litellm' not in sys.modules and 'torch' not in sys.modules, sorted(sys.modules)")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_a_sibling_client_shares_the_tally_the_spending_limit_and_the_log(tmp_path):
    designer = LLMClient(ScriptedBackend(["x" * 40] * 3, model="designer", cost_per_token=0.001), cache_dir=None,
                         max_cost=0.03)
    judge = designer.sibling(ScriptedBackend(["y" * 40] * 3, model="judge", cost_per_token=0.001))
    designer.ask(ASK, purpose="before the run directory exists")
    designer.attach(tmp_path / "llm")
    judge.ask(ASK, purpose="judge")
    assert judge.usage == designer.usage and designer.usage.requests == 2
    assert designer.usage.cost_usd == pytest.approx(2 * (len("You answer briefly.Name a colour.") // 4 + 10) * 0.001)
    logs = [json.loads(p.read_text()) for p in sorted((tmp_path / "llm").glob("*-request.json"))]
    assert [(r["model"], r["purpose"]) for r in logs] == [("designer", "before the run directory exists"),
                                                          ("judge", "judge")]
    with pytest.raises(BudgetExceeded):  # the judge's spending counts against the designer's limit too
        designer.ask(ASK.model_copy(update={"temperature": 0.5}))


def test_images_reach_the_wire_as_data_urls_and_the_cache_key_is_their_hash(server, tmp_path):
    from rewardsmith.schemas import ImagePart, TextPart

    def ask(data: bytes):
        image = ImagePart.of(data, "image/png", 1, 1, file="a.png")
        return LLMRequest.chat(("user", (TextPart(text="What is this?"), image)))

    client = LLMClient(LiteLLMBackend("openai/gpt-4o-mini", api_base=server.url + "/v1"), cache_dir=tmp_path / "c")
    first = b"\x89PNG\r\n\x1a\n-first"
    client.ask(ask(first))
    client.ask(ask(first))  # the same image: answered from the cache
    client.ask(ask(b"\x89PNG\r\n\x1a\n-other"))
    assert [r.images[0].data for r in server.received] == [first, b"\x89PNG\r\n\x1a\n-other"]
    assert server.received[0].body["messages"][0]["content"][1]["image_url"]["url"].startswith("data:image/png;base64,")
    assert (client.usage.requests, client.usage.cached) == (2, 1)
    assert "-first" not in json.dumps(ask(first).model_dump(mode="json"))  # keyed and logged by hash, not bytes
