"""Real OpenAI-compatible HTTP servers for the model client's tests, scripted per test.

A ``ModelServer`` is a small ASGI app served by uvicorn on 127.0.0.1 in a thread of its own
(``serve()``, which waits for readiness with a deadline). Each request takes the next behaviour
from its script (``Reply``, ``Status``, ``Raw``, ``Hang``, ``Gate``), then the default. The server records
what the tests assert on: the requests, the most requests it had in flight at once, and client
disconnects. Behaviours may sleep to act slow; that is behaviour, not synchronisation.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.asgi import closed_port, serve_asgi

Send = Any  # ASGI send callable


@dataclass
class Call:
    """One request as a behaviour sees it."""

    body: dict[str, Any] | None
    send: Send
    gone: asyncio.Event  # set when the client disconnected


@dataclass
class Reply:
    """A chat completion; streamed when the request asks for it (or ``stream`` forces it)."""

    content: str = 'do(action="Tap", element=[500,500])'
    reasoning: str = ""
    chunks: int = 4  # content split over this many SSE chunks
    first_delay_s: float = 0.0  # before the response starts
    chunk_delay_s: float = 0.0  # between chunks
    usage: tuple[int, int] | None = (1234, 56)  # (prompt, completion); None: send no usage
    stream: bool | None = None
    linger_s: float = 0.0  # after [DONE], before ending the response

    async def respond(self, server: ModelServer, call: Call) -> None:
        body = call.body or {}
        model = body.get("model", "test-model")
        await asyncio.sleep(self.first_delay_s)
        stream = body.get("stream", False) if self.stream is None else self.stream
        usage = None
        if self.usage is not None:
            usage = {"prompt_tokens": self.usage[0], "completion_tokens": self.usage[1],
                     "total_tokens": sum(self.usage)}  # fmt: skip
        if not stream:
            message = {"role": "assistant", "content": self.content}
            if self.reasoning:
                message["reasoning_content"] = self.reasoning
            reply: dict[str, Any] = {"id": "cmpl-1", "object": "chat.completion", "model": model,
                                     "choices": [{"index": 0, "message": message, "finish_reason": "stop"}]}  # fmt: skip
            if usage:
                reply["usage"] = usage
            await _send_all(call.send, 200, json.dumps(reply).encode(), "application/json")
            return
        await call.send({"type": "http.response.start", "status": 200,
                         "headers": [(b"content-type", b"text/event-stream")]})  # fmt: skip

        async def event(obj: object) -> None:
            data = obj if isinstance(obj, str) else json.dumps(obj)
            await call.send(
                {"type": "http.response.body", "body": f"data: {data}\n\n".encode(), "more_body": True}
            )

        def chunk(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {"id": "cmpl-1", "object": "chat.completion.chunk", "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}  # fmt: skip

        await call.send(
            {"type": "http.response.body", "body": b": keep-alive comment\n\n", "more_body": True}
        )
        await event(chunk({"role": "assistant", "content": ""}))
        if self.reasoning:
            await event(chunk({"reasoning_content": self.reasoning}))
        step = max(1, -(-len(self.content) // self.chunks))
        for i in range(0, len(self.content), step):
            if call.gone.is_set():
                return
            await event(chunk({"content": self.content[i : i + step]}))
            server.streaming.set()
            await asyncio.sleep(self.chunk_delay_s)
        await event(chunk({}, finish="stop"))
        if usage and (body.get("stream_options") or {}).get("include_usage"):
            await event({"id": "cmpl-1", "object": "chat.completion.chunk", "model": model, "choices": [],
                         "usage": usage})  # fmt: skip
        await event("[DONE]")
        if self.linger_s:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(call.gone.wait(), self.linger_s)
        await call.send({"type": "http.response.body", "body": b"", "more_body": False})


@dataclass
class Status:
    """An HTTP error with an OpenAI-style error body."""

    status: int
    message: str = "scripted failure"
    headers: dict[str, str] = field(default_factory=dict)

    async def respond(self, server: ModelServer, call: Call) -> None:
        body = json.dumps({"error": {"message": self.message, "type": "Error", "code": self.status}}).encode()
        await _send_all(call.send, self.status, body, "application/json", self.headers)


@dataclass
class Raw:
    """Any bytes with any content type (for replies that are not chat completions)."""

    body: bytes
    content_type: str = "application/json"
    status: int = 200

    async def respond(self, server: ModelServer, call: Call) -> None:
        await _send_all(call.send, self.status, self.body, self.content_type)


@dataclass
class Hang:
    """Read the request and never answer, until the client goes away (or ``limit_s`` passes)."""

    limit_s: float = 60.0

    async def respond(self, server: ModelServer, call: Call) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(call.gone.wait(), self.limit_s)


@dataclass
class Gate:
    """Hold the request until the test opens ``gate``, then behave as ``then`` (a test's pause point)."""

    gate: threading.Event
    then: Reply | Status | Raw | Hang = field(default_factory=Reply)
    limit_s: float = 60.0  # a test that never opens it fails on its own deadline, not here

    async def respond(self, server: ModelServer, call: Call) -> None:
        await asyncio.to_thread(self.gate.wait, self.limit_s)
        await self.then.respond(server, call)


Behaviour = Reply | Status | Raw | Hang | Gate


async def _send_all(
    send: Send, status: int, body: bytes, ctype: str, headers: dict[str, str] | None = None
) -> None:
    raw_headers = [(b"content-type", ctype.encode()), (b"content-length", str(len(body)).encode())]
    raw_headers += [(k.lower().encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw_headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})


@dataclass
class Seen:
    """A request as the server received it."""

    body: dict[str, Any] | None
    headers: dict[str, str]
    at: float  # time.monotonic()
    client: tuple[str, int] | None  # the client's address: the same one means a reused connection


class ModelServer:
    """The scripted app and what it saw; thread-safe enough for tests to read while it serves."""

    def __init__(self, *script: Behaviour, default: Behaviour | None = None) -> None:
        self._script: deque[Behaviour] = deque(script)
        self.default = default or Reply()
        self.requests: list[Seen] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.disconnects = 0  # clients that went away before the response was complete
        self.streaming = threading.Event()  # a content chunk went out
        self.disconnected = threading.Event()
        self.base_url = ""

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Send) -> None:
        if scope["type"] != "http":
            return
        raw = b""
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            raw += message.get("body", b"")
            if not message.get("more_body"):
                break
        if scope["path"] != "/v1/chat/completions":
            await _send_all(send, 404, b'{"detail": "Not Found"}', "application/json")
            return
        try:
            body = json.loads(raw)
        except ValueError:
            body = None
        headers = {k.decode(): v.decode() for k, v in scope["headers"]}
        client = tuple(scope["client"]) if scope.get("client") else None
        self.requests.append(Seen(body=body, headers=headers, at=time.monotonic(), client=client))  # type: ignore[arg-type]
        behaviour = self._script.popleft() if self._script else self.default
        gone = asyncio.Event()
        complete = False

        async def tracked_send(message: dict[str, Any]) -> None:
            nonlocal complete
            if message["type"] == "http.response.body" and not message.get("more_body"):
                complete = True  # before sending: the watcher may run while send() yields
            await send(message)

        async def watch() -> None:
            # uvicorn answers receive() with http.disconnect once the client left, or once we finished
            await receive()
            if not complete:
                self.disconnects += 1
                self.disconnected.set()
                gone.set()

        watcher = asyncio.create_task(watch())
        self.in_flight += 1
        self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            await behaviour.respond(self, Call(body=body, send=tracked_send, gone=gone))
        except OSError:  # the client left mid-response
            pass
        finally:
            self.in_flight -= 1
            watcher.cancel()


@contextlib.contextmanager
def serve(server: ModelServer, timeout: float = 10.0) -> Iterator[ModelServer]:
    """Serve ``server`` on a free port of 127.0.0.1 until the block ends; ``server.base_url`` ends in /v1."""
    with serve_asgi(server, lifespan="off", timeout=timeout) as url:
        server.base_url = f"{url}/v1"
        yield server


def dead_url() -> str:
    """A /v1 URL on a port nothing listens on (connection refused)."""
    return f"http://127.0.0.1:{closed_port()}/v1"


__all__ = ["Behaviour", "Call", "Gate", "Hang", "ModelServer", "Raw", "Reply", "Seen", "Status", "dead_url", "serve"]
