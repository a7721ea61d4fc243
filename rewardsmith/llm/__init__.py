"""The LLM seam: chat completions from any provider, with caching, retries and accounting.

A backend has one main method, ``complete(LLMRequest) -> LLMReply``:

- ``litellm``: every provider litellm serves (``openai/gpt-4o``, ``anthropic/claude-sonnet-4-5``,
  ``ollama/qwen2.5-coder``, ``hosted_vllm/...``), optionally at ``api_base``;
- ``scripted``: answers queued by a test (``enqueue``), no network.

:class:`~rewardsmith.llm.client.LLMClient` wraps a backend with what every caller needs: a disk
cache keyed by model and request (a re-run or a resume pays once), retries with backoff on
429/5xx/timeouts, a token and cost tally, a spending limit, and a log of every request and
answer in the run directory (never the API key).
"""

from __future__ import annotations

import os
from typing import Protocol

from ..errors import LLMError
from ..schemas import LLMReply, LLMRequest

# litellm fetches a price list from the internet at import unless told to use its bundled copy
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


class TransientLLMError(LLMError):
    """A failure worth retrying: rate limit, server error, timeout, dropped connection."""

    def __init__(self, message: str, retry_after: float | None = None, connection: bool = False):
        super().__init__(message)
        self.retry_after = retry_after
        self.connection = connection  # the server could not be reached at all


class Backend(Protocol):
    name: str
    model: str
    api_base: str | None
    supports_n: bool  # several answers per request (else the client sends parallel requests)

    def complete(self, request: LLMRequest) -> LLMReply:
        """Answer ``request``; raise TransientLLMError (retried) or LLMError (not retried)."""
        ...

    def missing_keys(self) -> list[str]:
        """Environment variables the provider needs that are not set."""
        ...

    def supports_images(self) -> bool | None:
        """Whether the model takes images in messages (``None``: not known; ask it)."""
        ...


def make_backend(model: str, api_base: str | None = None, **options) -> Backend:
    if model == "scripted":
        from .scripted import ScriptedBackend

        return ScriptedBackend(**options)
    from .litellm_backend import LiteLLMBackend

    return LiteLLMBackend(model, api_base=api_base, **options)


def make_llm(model: str, api_base: str | None = None, *, max_cost: float | None = None,
             cache_dir: str | None = None, **options):
    """An :class:`LLMClient` for a litellm model name (or ``scripted`` for tests); messages may
    carry images (:class:`~rewardsmith.schemas.ImagePart`) for a vision model."""
    from .client import LLMClient, default_cache_dir

    backend = make_backend(model, api_base, **options)
    return LLMClient(backend, cache_dir=default_cache_dir() if cache_dir is None else cache_dir,
                     max_cost=max_cost)


__all__ = ["Backend", "LLMError", "TransientLLMError", "make_backend", "make_llm"]
