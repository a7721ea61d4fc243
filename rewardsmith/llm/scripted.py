"""A model that answers from a queue, for tests (like simonw/llm's mock model).

>>> model = ScriptedBackend()
>>> model.enqueue("first answer", lambda request: f"echo: {request.messages[-1].content}")
>>> model.complete(LLMRequest.chat(("user", "hi"), n=2)).texts
['first answer', 'echo: hi']
>>> model.requests[0].messages[0].content
'hi'
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable

from ..errors import LLMError
from ..schemas import LLMReply, LLMRequest

Reply = str | Exception | Callable[[LLMRequest], str]


class ScriptedBackend:
    name = "scripted"
    api_base: str | None = None

    def __init__(self, replies: list[Reply] | tuple[Reply, ...] = (), supports_n: bool = True,
                 model: str = "scripted", cost_per_token: float = 0.0, images: bool | None = True):
        self.queue: deque[Reply] = deque(replies)
        self.requests: list[LLMRequest] = []
        self.supports_n = supports_n
        self.model = model
        self.cost_per_token = cost_per_token
        self.images = images
        self.lock = threading.Lock()

    def enqueue(self, *replies: Reply) -> None:
        """Queue answers: text, a function of the request, or an exception to raise."""
        with self.lock:
            self.queue.extend(replies)

    def missing_keys(self) -> list[str]:
        return []

    def supports_images(self) -> bool | None:
        return self.images

    def complete(self, request: LLMRequest) -> LLMReply:
        with self.lock:
            self.requests.append(request)
            texts = []
            for _ in range(request.n):
                if not self.queue:
                    raise LLMError("the scripted model has no more answers queued")
                item = self.queue.popleft()
                if isinstance(item, Exception):
                    raise item
                texts.append(item(request) if callable(item) else item)
        prompt = sum(len(m.text) + 340 * len(m.images) for m in request.messages) // 4
        completion = sum(len(t) for t in texts) // 4
        return LLMReply(texts=texts, prompt_tokens=prompt, completion_tokens=completion,
                        cost_usd=(prompt + completion) * self.cost_per_token, model=self.model)
