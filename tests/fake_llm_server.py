"""A small OpenAI- and Anthropic-compatible HTTP server on 127.0.0.1 for tests.

It speaks the two wire formats litellm uses for ``openai/...`` (``POST /v1/chat/completions``)
and ``anthropic/...`` (``POST /v1/messages``), plain and streamed (server-sent events), with
``n`` > 1 for the OpenAI format. Answers come from a ``responder(request)`` function (called once
per choice) that returns the text, or an HTTP error to answer with: an int (the status), or a
tuple of the status and a message (str) and/or headers (dict), e.g. ``(429, {"retry-after":
"2"})`` or ``(400, "image input is not supported")``; errors queued in ``errors`` (the same
forms) are served first, one per request. Every request is recorded (path, selected headers, JSON
body) for the test to inspect, with the images it carries decoded (``Received.images``: OpenAI
``image_url`` data URLs and Anthropic base64 ``image`` blocks alike); each image counts 85 prompt
tokens, as a low-detail image does at OpenAI.
"""

from __future__ import annotations

import base64
import json
import re
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class Image:
    """An image a request carried, in the wire format it came in."""

    format: str        # "image_url" (OpenAI) or "image" (Anthropic)
    media_type: str    # as declared: "image/png", "image/jpeg"
    data: bytes        # decoded from base64

    @property
    def kind(self) -> str | None:
        """What the bytes are, by their signature: "png", "jpeg" or None."""
        if self.data.startswith(b"\x89PNG\r\n\x1a\n"):
            return "png"
        if self.data.startswith(b"\xff\xd8\xff"):
            return "jpeg"
        return None


def _image(part: dict) -> Image | None:
    if part.get("type") == "image_url":
        url = part.get("image_url", {})
        url = url.get("url", "") if isinstance(url, dict) else str(url)
        match = re.match(r"^data:([\w/+.-]+);base64,(.*)$", url, re.S)
        return Image("image_url", match.group(1), base64.b64decode(match.group(2))) if match else \
            Image("image_url", "url", url.encode())
    if part.get("type") == "image":
        source = part.get("source", {})
        return Image("image", source.get("media_type", ""), base64.b64decode(source.get("data", "")))
    return None


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: dict

    @property
    def images(self) -> list[Image]:
        """Every image in the request's messages, in order."""
        out = []
        for m in self.body.get("messages", []):
            content = m.get("content")
            if isinstance(content, list):
                out += [image for part in content if isinstance(part, dict) and (image := _image(part))]
        return out

    @property
    def messages(self) -> list[dict]:
        """Messages in OpenAI form, whichever format the request used."""
        out = []
        system = self.body.get("system")
        if system:
            text = system if isinstance(system, str) else "".join(b.get("text", "") for b in system)
            out.append({"role": "system", "content": text})
        for m in self.body.get("messages", []):
            content = m.get("content")
            if isinstance(content, list):
                content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
            out.append({"role": m["role"], "content": content})
        return out

    @property
    def system(self) -> str:
        return next((m["content"] for m in self.messages if m["role"] == "system"), "")

    @property
    def last_user(self) -> str:
        return next((m["content"] for m in reversed(self.messages) if m["role"] == "user"), "")

    @property
    def text(self) -> str:
        return "\n".join(str(m["content"]) for m in self.messages)


def _tokens(text: str) -> int:
    return max(1, len(text) // 4)


@dataclass
class FakeLLMServer:
    responder: Callable[[Received], str | int | tuple[int, str]]
    errors: deque = field(default_factory=deque)  # status codes served before real answers
    received: list[Received] = field(default_factory=list)
    port: int = 0  # 0: any free port

    def __post_init__(self):
        self.lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # keep test output clean
                pass

            def do_GET(self):
                self._json(404, {"error": {"message": "not found"}})

            def do_POST(self):
                length = int(self.headers.get("content-length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    return self._json(400, {"error": {"message": "bad json"}})
                headers = {k.lower(): v for k, v in self.headers.items()
                           if k.lower() in ("authorization", "x-api-key", "anthropic-version", "content-type")}
                request = Received(self.path, headers, body)
                with server.lock:
                    server.received.append(request)
                    status = server.errors.popleft() if server.errors else None
                anthropic = self.path.rstrip("/").endswith("/messages")
                if status is not None:
                    return self._error(status, anthropic)
                if not (anthropic or self.path.rstrip("/").endswith("/chat/completions")):
                    return self._json(404, {"error": {"message": f"no route {self.path}"}})
                n = 1 if anthropic else int(body.get("n") or 1)
                texts = []
                for _ in range(n):
                    answer = server.responder(request)
                    if isinstance(answer, (int, tuple)):  # the script asks for an HTTP error
                        return self._error(answer, anthropic)
                    texts.append(answer)
                prompt_tokens = _tokens(request.text) + 85 * len(request.images)
                if anthropic:
                    return self._anthropic(body, texts[0], prompt_tokens)
                return self._openai(body, texts, prompt_tokens)

            # -- formats
            def _openai(self, body, texts, prompt_tokens):
                model = body.get("model", "fake")
                completion_tokens = sum(_tokens(t) for t in texts)
                usage = {"prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                         "total_tokens": prompt_tokens + completion_tokens}
                if not body.get("stream"):
                    return self._json(200, {
                        "id": "chatcmpl-fake", "object": "chat.completion", "created": int(time.time()),
                        "model": model, "usage": usage,
                        "choices": [{"index": i, "message": {"role": "assistant", "content": t},
                                     "finish_reason": "stop"} for i, t in enumerate(texts)]})
                events = []
                base = {"id": "chatcmpl-fake", "object": "chat.completion.chunk", "created": int(time.time()),
                        "model": model}
                for i, text in enumerate(texts):
                    events.append({**base, "choices": [{"index": i, "delta": {"role": "assistant", "content": ""},
                                                        "finish_reason": None}]})
                    for piece in _pieces(text):
                        events.append({**base, "choices": [{"index": i, "delta": {"content": piece},
                                                            "finish_reason": None}]})
                    events.append({**base, "choices": [{"index": i, "delta": {}, "finish_reason": "stop"}]})
                if (body.get("stream_options") or {}).get("include_usage"):
                    events.append({**base, "choices": [], "usage": usage})
                self._sse([(None, e) for e in events] + [(None, "[DONE]")])

            def _anthropic(self, body, text, prompt_tokens):
                model = body.get("model", "fake")
                out_tokens = _tokens(text)
                if not body.get("stream"):
                    return self._json(200, {
                        "id": "msg_fake", "type": "message", "role": "assistant", "model": model,
                        "content": [{"type": "text", "text": text}], "stop_reason": "end_turn",
                        "stop_sequence": None, "usage": {"input_tokens": prompt_tokens, "output_tokens": out_tokens}})
                events = [("message_start", {"type": "message_start", "message": {
                    "id": "msg_fake", "type": "message", "role": "assistant", "model": model, "content": [],
                    "stop_reason": None, "stop_sequence": None,
                    "usage": {"input_tokens": prompt_tokens, "output_tokens": 1}}}),
                    ("content_block_start", {"type": "content_block_start", "index": 0,
                                             "content_block": {"type": "text", "text": ""}})]
                for piece in _pieces(text):
                    events.append(("content_block_delta", {"type": "content_block_delta", "index": 0,
                                                           "delta": {"type": "text_delta", "text": piece}}))
                events += [("content_block_stop", {"type": "content_block_stop", "index": 0}),
                           ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn",
                                                                                 "stop_sequence": None},
                                              "usage": {"output_tokens": out_tokens}}),
                           ("message_stop", {"type": "message_stop"})]
                self._sse(events)

            def _error(self, error, anthropic):
                """``error``: a status, or (status, message and/or headers)."""
                status, *extra = error if isinstance(error, tuple) else (error,)
                message = next((x for x in extra if isinstance(x, str)), None) or f"scripted error {status}"
                headers = next((x for x in extra if isinstance(x, dict)), None)
                kind = {400: "invalid_request_error", 429: "rate_limit_error", 401: "authentication_error",
                        404: "not_found_error", 529: "overloaded_error"}.get(status, "api_error")
                if anthropic:
                    return self._json(status, {"type": "error", "error": {"type": kind, "message": message}}, headers)
                return self._json(status, {"error": {"message": message, "type": kind, "code": str(status)}}, headers)

            # -- transport
            def _json(self, status, payload, headers=None):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                if headers is None and status == 429:
                    headers = {"retry-after": "0"}
                for name, value in (headers or {}).items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def _sse(self, events):
                chunks = []
                for name, payload in events:
                    data = payload if isinstance(payload, str) else json.dumps(payload)
                    chunks.append((f"event: {name}\n" if name else "") + f"data: {data}\n\n")
                data = "".join(chunks).encode()
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self.httpd.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeLLMServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=5)

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _pieces(text: str, size: int = 40) -> list[str]:
    return [text[i:i + size] for i in range(0, len(text), size)] or [""]
