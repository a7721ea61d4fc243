"""What every LLM caller needs around a backend: cache, retries, accounting, budget, logs.

>>> from rewardsmith.llm.scripted import ScriptedBackend
>>> backend = ScriptedBackend(["first", "second"])
>>> client = LLMClient(backend, cache_dir=None)
>>> [a.text for a in client.complete(LLMRequest.chat(("user", "hi")), n=2, purpose="demo")]
['first', 'second']
>>> client.usage.requests
1
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from ..errors import BudgetExceeded, LLMError
from ..runs import atomic_write_json
from ..schemas import ImagePart, LLMReply, LLMRequest, LLMUsage, TextPart
from . import Backend, TransientLLMError

CACHE_VERSION = 1
SECRET_NAME = re.compile(r"(KEY|TOKEN|SECRET|PASSWORD)", re.I)


def default_cache_dir() -> str:
    """``$REWARDSMITH_CACHE_DIR`` (``off`` disables), else ``$XDG_CACHE_HOME/rewardsmith/llm``."""
    explicit = os.environ.get("REWARDSMITH_CACHE_DIR")
    if explicit is not None:
        return "" if explicit.lower() in ("", "off", "none", "0") else explicit
    root = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return os.path.join(root, "rewardsmith", "llm")


def scrub(text: str) -> str:
    """``text`` with the value of every secret-looking environment variable masked."""
    for name, value in os.environ.items():
        if len(value) >= 8 and SECRET_NAME.search(name) and value in text:
            text = text.replace(value, "***")
    return text


@dataclass(frozen=True)
class Answer:
    """One answer and where its exchange is logged (``llm/007`` for ``llm/007-response.json``)."""

    text: str
    log: str | None


class _Ledger:
    """What clients of one run share: the tally, the spending limit and the numbered log."""

    def __init__(self, max_cost: float | None):
        self.lock = threading.Lock()
        self.max_cost = max_cost
        self.usage = LLMUsage()
        self.log_dir: Path | None = None
        self.pending_logs: list[tuple[dict, dict]] = []
        self.next_log = 0


class LLMClient:
    """Thread-safe wrapper of one backend; shared by the designer, the critic and the analyzer.
    Another model of the same run (the VLM judge) is a :meth:`sibling`: same tally, limit and log."""

    def __init__(self, backend: Backend, cache_dir: str | Path | None = None, max_cost: float | None = None,
                 max_attempts: int = 5, backoff_s: float = 1.0, backoff_max_s: float = 30.0,
                 max_parallel: int = 4, retry_after_max_s: float = 120.0, _ledger: _Ledger | None = None):
        self.backend = backend
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.max_attempts, self.backoff_s, self.backoff_max_s = max_attempts, backoff_s, backoff_max_s
        self.retry_after_max_s = retry_after_max_s  # a server's own Retry-After is honoured up to this
        self.max_parallel = max_parallel
        self._ledger = _ledger or _Ledger(max_cost)
        self.lock = self._ledger.lock

    def sibling(self, backend: Backend) -> LLMClient:
        """A client of another backend that counts, limits and logs together with this one."""
        return LLMClient(backend, self.cache_dir, max_attempts=self.max_attempts, backoff_s=self.backoff_s,
                         backoff_max_s=self.backoff_max_s, max_parallel=self.max_parallel,
                         retry_after_max_s=self.retry_after_max_s, _ledger=self._ledger)

    @property
    def model(self) -> str:
        return self.backend.model

    @property
    def max_cost(self) -> float | None:
        return self._ledger.max_cost

    @property
    def usage(self) -> LLMUsage:
        """What this client and its siblings spent."""
        return self._ledger.usage

    def _count(self, usage: LLMUsage) -> None:
        with self.lock:
            self._ledger.usage = self._ledger.usage + usage

    def add_previous_usage(self, usage: LLMUsage) -> None:
        """Count what earlier sessions of a resumed run spent (for the tally and --max-cost)."""
        self._count(usage)

    # -- logs ------------------------------------------------------------------------------------
    @property
    def log_dir(self) -> Path | None:
        return self._ledger.log_dir

    def attach(self, log_dir: Path) -> None:
        """Log every exchange (of this client and its siblings) under ``log_dir`` from now on, and
        the ones made before."""
        log_dir.mkdir(parents=True, exist_ok=True)
        numbers = [int(p.name[:3]) for p in log_dir.glob("[0-9][0-9][0-9]*-request.json")]
        ledger = self._ledger
        with self.lock:
            ledger.log_dir = log_dir
            ledger.next_log = max(numbers, default=-1) + 1
            pending, ledger.pending_logs = ledger.pending_logs, []
        for request, response in pending:
            self._write_log(request, response)

    def _write_log(self, request: dict, response: dict) -> str | None:
        ledger = self._ledger
        with self.lock:
            if ledger.log_dir is None:
                ledger.pending_logs.append((request, response))
                return None
            log_dir, number = ledger.log_dir, ledger.next_log
            ledger.next_log += 1
        stem = f"{number:03d}"
        atomic_write_json(log_dir / f"{stem}-request.json", request)
        atomic_write_json(log_dir / f"{stem}-response.json", response)
        return f"{log_dir.name}/{stem}"

    # -- cache -----------------------------------------------------------------------------------
    def _key(self, request: LLMRequest, sample: int) -> str:
        data = {"v": CACHE_VERSION, "model": self.backend.model, "api_base": self.backend.api_base,
                "request": request.model_dump(mode="json"), "sample": sample}
        return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()

    def _cache_path(self, key: str) -> Path | None:
        return self.cache_dir / key[:2] / f"{key}.json" if self.cache_dir else None

    def _cached(self, key: str) -> LLMReply | None:
        path = self._cache_path(key)
        if path is None or not path.is_file():
            return None
        try:
            return LLMReply.model_validate_json(path.read_text())
        except ValueError:
            return None

    # -- requests --------------------------------------------------------------------------------
    def complete(self, request: LLMRequest, n: int = 1, purpose: str = "") -> list[Answer]:
        """``n`` answers to ``request``: one request with ``n`` when the provider supports it,
        else ``n`` parallel requests (each cached separately)."""
        if n == 1 or self.backend.supports_n:
            reply, log = self.ask(request.model_copy(update={"n": n}), purpose)
            return [Answer(text, log) for text in reply.texts]
        with ThreadPoolExecutor(max_workers=min(n, self.max_parallel)) as pool:
            results = list(pool.map(lambda i: self.ask(request, purpose, sample=i), range(n)))
        return [Answer(text, log) for reply, log in results for text in reply.texts]

    def ask(self, request: LLMRequest, purpose: str = "", sample: int = 0, use_cache: bool = True,
            attempts: int | None = None, retry_unreachable: bool = True) -> tuple[LLMReply, str | None]:
        """One request through the cache, the budget and the retry loop; the reply and its log.

        Transient answers (429, 5xx, timeouts, dropped connections) are retried; with
        ``retry_unreachable`` false, a server that cannot be reached at all is not."""
        key = self._key(request, sample)
        record = {"purpose": purpose, "model": self.backend.model, "api_base": self.backend.api_base,
                  "sample": sample, "cache_key": key, "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
                  **request.model_dump(mode="json")}
        cached = self._cached(key) if use_cache else None
        if cached is not None:
            self._count(LLMUsage(cached=1))
            return cached, self._write_log(record, {"cached": True, **cached.model_dump(mode="json")})

        self._check_budget()
        start = time.perf_counter()
        errors: list[str] = []
        attempts = attempts or self.max_attempts
        for attempt in range(1, attempts + 1):
            try:
                reply = self.backend.complete(request)
                break
            except TransientLLMError as exc:
                errors.append(scrub(str(exc)))
                if exc.connection and not retry_unreachable:
                    self._write_log(record, {"error": errors[-1], "errors": errors})
                    raise LLMError(errors[-1]) from None
                if attempt == attempts:
                    self._write_log(record, {"error": errors[-1], "errors": errors})
                    raise LLMError(f"{self.backend.model}: {errors[-1]} (gave up after {attempt} attempts)") from None
                self._count(LLMUsage(retries=1))
                time.sleep(self._delay(attempt, exc.retry_after))
            except LLMError as exc:
                errors.append(scrub(str(exc)))
                self._write_log(record, {"error": errors[-1], "errors": errors})
                raise LLMError(errors[-1]) from None
        self._count(LLMUsage(requests=1, prompt_tokens=reply.prompt_tokens, completion_tokens=reply.completion_tokens,
                             cost_usd=reply.cost_usd))
        path = self._cache_path(key)
        if path is not None and use_cache:
            atomic_write_json(path, reply)
        log = self._write_log(record, {"cached": False, "attempts": len(errors) + 1, "errors": errors,
                                       "wall_s": round(time.perf_counter() - start, 3),
                                       **reply.model_dump(mode="json")})
        return reply, log

    def _delay(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.retry_after_max_s)
        return min(self.backoff_max_s, self.backoff_s * 2 ** (attempt - 1)) * random.uniform(0.5, 1.5)

    def _check_budget(self) -> None:
        if self.max_cost is not None and self.usage.cost_usd >= self.max_cost:
            raise BudgetExceeded(f"LLM spending reached ${self.usage.cost_usd:.6g}, the limit set by "
                                 f"--max-cost ${self.max_cost:g}")

    # -- preflight -------------------------------------------------------------------------------
    def preflight(self, image: ImagePart | None = None, who: str = "LLM", flag: str = "--api-base") -> None:
        """Fail early, with one line, on a missing key, an unreachable server or an unknown model;
        with ``image``, also on a model that cannot take images (litellm's model list, else the
        request carrying it).

        A rate limit or a server error at start-up is no reason to give up: those answers are
        retried as every request's are (with the server's ``Retry-After``); only a server that
        cannot be reached, a rejected key or an unknown model end the run here."""
        missing = self.backend.missing_keys()
        model = self.backend.model
        if missing and not self.backend.api_base:
            raise LLMError(f"model {model} needs {' and '.join(missing)} in the environment "
                           f"(or {flag} URL for a server that needs no key)")
        content: str | tuple[TextPart | ImagePart, ...] = PING
        if image is not None:
            if self.backend.supports_images() is False:
                raise LLMError(f"model {model} cannot take images (litellm's model list says so); the {who} "
                               "needs a vision model such as openai/gpt-4o-mini or anthropic/claude-sonnet-4-5")
            content = (TextPart(text=PING), image)
        ping = LLMRequest.chat(("user", content), max_tokens=16)
        try:
            self.ask(ping, purpose=f"preflight {who}" if image is not None else "preflight", use_cache=False,
                     retry_unreachable=False)
        except BudgetExceeded:
            raise
        except LLMError as exc:
            with_image = " (a request with a 16x16 image)" if image is not None else ""
            raise LLMError(f"the {who} is not usable{with_image}: {exc}") from None


PING = "Reply with the single word OK."
