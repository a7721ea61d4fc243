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
from ..schemas import LLMReply, LLMRequest, LLMUsage
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


class LLMClient:
    """Thread-safe wrapper of one backend; shared by the designer, the critic and the analyzer."""

    def __init__(self, backend: Backend, cache_dir: str | Path | None = None, max_cost: float | None = None,
                 max_attempts: int = 5, backoff_s: float = 1.0, backoff_max_s: float = 30.0,
                 max_parallel: int = 4, retry_after_max_s: float = 120.0):
        self.backend = backend
        self.cache_dir = Path(cache_dir) if cache_dir else None
        self.max_cost = max_cost
        self.max_attempts, self.backoff_s, self.backoff_max_s = max_attempts, backoff_s, backoff_max_s
        self.retry_after_max_s = retry_after_max_s  # a server's own Retry-After is honoured up to this
        self.max_parallel = max_parallel
        self.lock = threading.Lock()
        self._usage = LLMUsage()
        self.log_dir: Path | None = None
        self._pending_logs: list[tuple[dict, dict]] = []
        self._next_log = 0

    @property
    def model(self) -> str:
        return self.backend.model

    @property
    def usage(self) -> LLMUsage:
        return self._usage

    def add_previous_usage(self, usage: LLMUsage) -> None:
        """Count what earlier sessions of a resumed run spent (for the tally and --max-cost)."""
        with self.lock:
            self._usage = self._usage + usage

    # -- logs ------------------------------------------------------------------------------------
    def attach(self, log_dir: Path) -> None:
        """Log every exchange under ``log_dir`` from now on (and the ones made before)."""
        log_dir.mkdir(parents=True, exist_ok=True)
        numbers = [int(p.name[:3]) for p in log_dir.glob("[0-9][0-9][0-9]*-request.json")]
        with self.lock:
            self.log_dir = log_dir
            self._next_log = max(numbers, default=-1) + 1
            pending, self._pending_logs = self._pending_logs, []
        for request, response in pending:
            self._write_log(request, response)

    def _write_log(self, request: dict, response: dict) -> str | None:
        with self.lock:
            if self.log_dir is None:
                self._pending_logs.append((request, response))
                return None
            number = self._next_log
            self._next_log += 1
        stem = f"{number:03d}"
        atomic_write_json(self.log_dir / f"{stem}-request.json", request)
        atomic_write_json(self.log_dir / f"{stem}-response.json", response)
        return f"{self.log_dir.name}/{stem}"

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
            with self.lock:
                self._usage = self._usage + LLMUsage(cached=1)
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
                with self.lock:
                    self._usage = self._usage + LLMUsage(retries=1)
                time.sleep(self._delay(attempt, exc.retry_after))
            except LLMError as exc:
                errors.append(scrub(str(exc)))
                self._write_log(record, {"error": errors[-1], "errors": errors})
                raise LLMError(errors[-1]) from None
        with self.lock:
            self._usage = self._usage + LLMUsage(requests=1, prompt_tokens=reply.prompt_tokens,
                                                 completion_tokens=reply.completion_tokens, cost_usd=reply.cost_usd)
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
        if self.max_cost is not None and self._usage.cost_usd >= self.max_cost:
            raise BudgetExceeded(f"LLM spending reached ${self._usage.cost_usd:.6g}, the limit set by "
                                 f"--max-cost ${self.max_cost:g}")

    # -- preflight -------------------------------------------------------------------------------
    def preflight(self) -> None:
        """Fail early, with one line, on a missing key, an unreachable server or an unknown model.

        A rate limit or a server error at start-up is no reason to give up: those answers are
        retried as every request's are (with the server's ``Retry-After``); only a server that
        cannot be reached, a rejected key or an unknown model end the run here."""
        missing = self.backend.missing_keys()
        if missing and not self.backend.api_base:
            raise LLMError(f"model {self.backend.model} needs {' and '.join(missing)} in the environment "
                           "(or --api-base URL for a server that needs no key)")
        ping = LLMRequest.chat(("user", "Reply with the single word OK."), max_tokens=16)
        try:
            self.ask(ping, purpose="preflight", use_cache=False, retry_unreachable=False)
        except BudgetExceeded:
            raise
        except LLMError as exc:
            raise LLMError(f"the LLM is not usable: {exc}") from None
