"""Chat completions through litellm: any provider it serves, at its default URL or ``api_base``.

litellm is imported on first use (it takes seconds), with its bundled price list (no download).
Its own retries are turned off: :class:`~rewardsmith.llm.client.LLMClient` retries, so every
attempt is counted and logged once.
"""

from __future__ import annotations

import os
import re

from ..errors import LLMError
from ..schemas import LLMMessage, LLMReply, LLMRequest, TextPart
from . import TransientLLMError
from .client import scrub

_litellm = None


def import_litellm():
    global _litellm
    if _litellm is None:
        os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
        import litellm

        litellm.suppress_debug_info = True  # no "Give Feedback" banners on stderr
        litellm.telemetry = False
        litellm.drop_params = True  # e.g. temperature for models that refuse it: dropped, not an error
        _litellm = litellm
    return _litellm


class LiteLLMBackend:
    name = "litellm"

    def __init__(self, model: str, api_base: str | None = None, timeout_s: float = 300.0, stream: bool | None = None):
        litellm = import_litellm()
        try:
            _, self.provider, _, _ = litellm.get_llm_provider(model, api_base=api_base)
        except Exception:
            raise LLMError(f"unknown model {model!r}: give a litellm model name with its provider, such as "
                           "openai/gpt-4o, anthropic/claude-sonnet-4-5 or ollama/qwen2.5-coder") from None
        self.model = model
        self.api_base = api_base.rstrip("/") if api_base else None
        self.timeout_s = timeout_s
        # streaming keeps long answers from hitting read timeouts on slow servers; off by default
        self.stream = os.environ.get("REWARDSMITH_LLM_STREAM", "") not in ("", "0") if stream is None else stream
        params = litellm.get_supported_openai_params(model=model, custom_llm_provider=self.provider) or []
        self.supports_n = "n" in params

    def missing_keys(self) -> list[str]:
        missing = import_litellm().validate_environment(self.model).get("missing_keys") or []
        # a base URL variable (OLLAMA_API_BASE, ...) has a working default; only keys are required
        return [name for name in missing if not re.search(r"(BASE|URL|HOST)", name)]

    def supports_images(self) -> bool | None:
        try:
            info = import_litellm().get_model_info(self.model)
        except Exception:
            return None  # a model litellm does not list (a local server): only a request can tell
        known = info.get("supports_vision")
        return None if known is None else bool(known)

    def complete(self, request: LLMRequest) -> LLMReply:
        litellm = import_litellm()
        kwargs: dict = {"model": self.model, "messages": [_wire(m) for m in request.messages],
                        "timeout": self.timeout_s, "max_retries": 0, "num_retries": 0}
        if self.api_base:
            kwargs["api_base"] = self.api_base
            if self.missing_keys():  # a local server that needs no key; the SDKs still want one
                kwargs["api_key"] = "no-key"
        if request.n > 1:
            kwargs["n"] = request.n
        if request.temperature is not None:
            kwargs["temperature"] = request.temperature
        if request.max_tokens is not None:
            kwargs["max_tokens"] = request.max_tokens
        if self.stream:
            kwargs["stream"] = True
            kwargs["stream_options"] = {"include_usage": True}  # the token counts, in the last chunk
        try:
            response = litellm.completion(**kwargs)
            texts, usage = _collect_stream(response, request.n) if self.stream else _collect(response)
        except Exception as exc:
            raise self._translate(exc) from None
        if usage is None:  # some servers send no usage when streaming: count the tokens ourselves
            usage = (litellm.token_counter(model=self.model, messages=kwargs["messages"]),
                     sum(litellm.token_counter(model=self.model, text=t) for t in texts))
        prompt_tokens, completion_tokens = usage
        return LLMReply(texts=texts, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens,
                        cost_usd=self._cost(prompt_tokens, completion_tokens), model=self.model)

    def _cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        try:
            prompt_cost, completion_cost = import_litellm().cost_per_token(
                model=self.model, prompt_tokens=prompt_tokens, completion_tokens=completion_tokens)
            return float(prompt_cost + completion_cost)
        except Exception:
            return 0.0  # a model without a known price (a local server): free as far as we know

    def _translate(self, exc: Exception) -> LLMError:
        litellm = import_litellm()
        where = self.api_base or self.provider
        status = getattr(exc, "status_code", None)
        text = _short(exc)
        if _in_chain(exc, ("ConnectError", "ConnectionRefusedError", "gaierror")):  # refused, no such host
            return TransientLLMError(f"cannot reach {where}: {_root_message(exc)}", connection=True)
        if _in_chain(exc, ("ConnectionError", "APIConnectionError", "RemoteProtocolError", "ReadError")):
            return TransientLLMError(f"the connection to {where} broke: {_root_message(exc)}")
        if isinstance(exc, litellm.Timeout) or _in_chain(exc, ("TimeoutException", "ReadTimeout", "TimeoutError")):
            return TransientLLMError(f"{where} did not answer within {self.timeout_s:g} s")
        if isinstance(status, int) and (status in (408, 409, 429) or status >= 500):
            return TransientLLMError(f"{where} answered {status}: {text}", retry_after=_retry_after(exc))
        if isinstance(exc, litellm.AuthenticationError) or status in (401, 403):
            keys = ", ".join(_key_names(self.model)) or "the API key"
            return LLMError(f"{where} rejected the credentials for {self.model} (check {keys})")
        if isinstance(exc, litellm.NotFoundError) or status == 404:
            return LLMError(f"model {self.model} was not found at {where}: {text}")
        return LLMError(f"{self.model}: {text}")


def _wire(message: LLMMessage) -> dict:
    """A message in OpenAI's form, which litellm translates for each provider (Anthropic's base64
    ``image`` blocks, Gemini's inline data, ...): images as ``image_url`` data URLs."""
    if isinstance(message.content, str):
        return {"role": message.role, "content": message.content}
    parts = [{"type": "text", "text": part.text} if isinstance(part, TextPart)
             else {"type": "image_url", "image_url": {"url": part.data_url()}} for part in message.content]
    return {"role": message.role, "content": parts}


def _collect(response) -> tuple[list[str], tuple[int, int] | None]:
    texts = [(choice.message.content or "") for choice in response.choices]
    usage = getattr(response, "usage", None)
    return texts, (usage.prompt_tokens or 0, usage.completion_tokens or 0) if usage else None


def _collect_stream(chunks, n: int) -> tuple[list[str], tuple[int, int] | None]:
    """Join streamed deltas per choice (litellm's chunk builder merges the choices of n > 1)."""
    parts: dict[int, list[str]] = {}
    usage = None
    for chunk in chunks:
        for choice in chunk.choices or []:
            content = getattr(choice.delta, "content", None)
            parts.setdefault(choice.index or 0, []).append(content or "")
        chunk_usage = getattr(chunk, "usage", None)
        if chunk_usage and (chunk_usage.prompt_tokens or chunk_usage.completion_tokens):
            usage = (chunk_usage.prompt_tokens or 0, chunk_usage.completion_tokens or 0)
    texts = ["".join(parts.get(i, [])) for i in range(max(n, len(parts)))]
    return texts, usage


def _chain(exc: BaseException | None):
    seen = 0
    while exc is not None and seen < 10:
        yield exc
        exc = exc.__cause__ or exc.__context__
        seen += 1


def _in_chain(exc: BaseException, names: tuple[str, ...]) -> bool:
    return any(type(e).__name__ in names for e in _chain(exc))


def _root_message(exc: BaseException) -> str:
    *_, root = _chain(exc)
    return scrub(str(root).strip()) or type(root).__name__


def _short(exc: BaseException) -> str:
    """The provider's message without litellm's class-name prefixes, on one line."""
    raw = str(getattr(exc, "message", "") or exc).strip()
    text = scrub(raw.splitlines()[0]) if raw else type(exc).__name__
    text = re.sub(r"^(litellm\.\w+:\s*)?(\w+Error:\s*)?(\w+Exception\s*-\s*)?", "", text)
    text = text.split(". Handle with `litellm.")[0]
    return text[:300]


def _retry_after(exc: BaseException) -> float | None:
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None) or {}
    try:
        return retry_after_seconds(headers.get("retry-after-ms"), headers.get("retry-after"))
    except AttributeError:
        return None


def retry_after_seconds(milliseconds: str | None, value: str | None, now: float | None = None) -> float | None:
    """Seconds to wait as a server asks: ``retry-after-ms`` (OpenAI), else ``Retry-After`` in
    seconds or as an HTTP date (RFC 9110).

    >>> retry_after_seconds(None, "7"), retry_after_seconds("1500", "7")
    (7.0, 1.5)
    >>> retry_after_seconds(None, "Wed, 21 Oct 2015 07:28:30 GMT", now=1445412500.0)
    10.0
    >>> retry_after_seconds(None, "soon") is None
    True
    """
    import email.utils
    import time

    for text, scale in ((milliseconds, 1e-3), (value, 1.0)):
        if text is None:
            continue
        try:
            return max(0.0, float(text) * scale)
        except (TypeError, ValueError):
            pass
    if value is None:
        return None
    try:
        when = email.utils.parsedate_to_datetime(str(value))
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    return max(0.0, when.timestamp() - (time.time() if now is None else now))


def _key_names(model: str) -> list[str]:
    try:
        return [k for k in import_litellm().validate_environment(model).get("missing_keys") or []] or [
            f"{model.split('/')[0].upper()}_API_KEY"]
    except Exception:
        return []
