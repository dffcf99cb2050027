"""``HttpEdges``: the limits every HTTP request meets before the fast path or any route sees it.

- **Headers**: over ``MAX_HEADER_BYTES`` in total (names, values and 4 bytes of framing a line) or
  over ``MAX_HEADER_FIELDS`` of them: 431 ``headers_too_large``. uvicorn's httptools parser takes a
  1 MB header line or 500 headers as they come, so the limit is here.
- **Body size**: a ``Content-Length`` over ``MAX_BODY_BYTES`` (or not a number): 413
  ``payload_too_large``, after reading and dropping the body (up to ``drain_limit``) so that the
  client, still sending, gets the answer instead of a connection reset. A body that outgrows the
  limit as it arrives (chunked): 413 too, and the connection is closed, the rest unread.
- **Body time**: the whole body must arrive within ``body_timeout_s`` of the first read, else 408
  ``body_timeout`` and the connection is closed: a body shorter than its ``Content-Length`` would
  otherwise hold the request, and its connection, forever.

A request with a body is read here whole (at most ``MAX_BODY_BYTES``, as the routes and the fast
path read it anyway) and handed on in one message, so neither the fast path (``api/submission.py``)
nor a route ever waits on a client or sees a body over the limit. A request without one (no
``Content-Length``, no ``Transfer-Encoding``) costs only the count of its header bytes: this sits in
front of the submission hot path. Answers come from the one error table (``api/errors.py``).
WebSockets pass through untouched.

Uploads are bodies of another kind, each route with its own limit and deadline (an ``Upload``, given
by ``create_app`` from the settings): a file for a session's phone (``PUT /api/v1/sessions/{id}/files``,
``device_api.file_max_bytes``) and a personal phone's archive (``POST /api/v1/personal-phones/import``,
``personal_phones.max_archive_bytes``). Their 413 names the setting that limits them.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI

from orchestrator.api.errors import response_for
from orchestrator.errors import BodyTimeout, HeadersTooLarge, PayloadTooLarge, PhoneFleetError

__all__ = [
    "BODY_TIMEOUT_S",
    "MAX_BODY_BYTES",
    "MAX_HEADER_BYTES",
    "MAX_HEADER_FIELDS",
    "HttpEdges",
    "Upload",
    "document_body_errors",
]

# The largest valid body is ~20 KB (16 KB metadata + 2000-char instruction); refuse far larger ones
# before they are read into memory.
MAX_BODY_BYTES = 256 * 1024
# What nginx and most proxies allow in front of us (large_client_header_buffers 4 × 8k), and far
# more than a browser or an integrator sends (~1-2 KB, about 20 fields).
MAX_HEADER_BYTES = 16 * 1024
MAX_HEADER_FIELDS = 100
# 256 KB in 5 s is 50 KB/s: any client that means to send its body has sent it by then.
BODY_TIMEOUT_S = 5.0



@dataclass(frozen=True)
class Upload:
    """A route whose body is a file, not JSON: matched on its method and path (a regex), with its own
    size limit and deadline; ``what`` names the body and its limit's setting in the 413."""

    method: str
    path: str
    limit: int
    timeout_s: float
    what: str

    def matches(self, method: str, path: str) -> bool:
        return method == self.method and re.fullmatch(self.path, path) is not None

# The answers any operation that takes a body may give before its route runs (OpenAPI).
_BODY_ERRORS = {
    "400": "The body is not valid JSON, or is nested too deep (`invalid_json`)",
    "408": "The body did not all arrive in time (`body_timeout`)",
    "413": f"The body exceeds {MAX_BODY_BYTES} bytes (`payload_too_large`)",
}


class HttpEdges:
    """ASGI middleware: refuses oversized headers, oversized bodies and bodies that stop arriving."""

    def __init__(
        self,
        app: Any,
        *,
        body_limit: int = MAX_BODY_BYTES,
        body_timeout_s: float = BODY_TIMEOUT_S,
        drain_limit: int = 16 * 1024 * 1024,
        uploads: Sequence[Upload] = (),
    ) -> None:
        self.app = app
        self.body_limit = body_limit
        self.body_timeout_s = body_timeout_s
        self.uploads = tuple(uploads)
        self.drain_limit = drain_limit

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = scope["headers"]
        size = 0
        length = None
        chunked = False
        for name, value in headers:
            size += len(name) + len(value) + 4  # "name: value\r\n"
            if name == b"content-length":
                length = length or value
            elif name == b"transfer-encoding":
                chunked = True
        if size > MAX_HEADER_BYTES or len(headers) > MAX_HEADER_FIELDS:
            exc = HeadersTooLarge(
                f"the request headers exceed {MAX_HEADER_BYTES} bytes or {MAX_HEADER_FIELDS} fields"
            )
            await _answer(exc, scope, receive, send, close=True)
            return
        if not chunked and (length is None or length == b"0"):
            await self.app(scope, receive, send)
            return
        upload = next((u for u in self.uploads if u.matches(scope["method"], scope["path"])), None)
        limit, timeout_s = (upload.limit, upload.timeout_s) if upload else (self.body_limit, self.body_timeout_s)
        too_large = PayloadTooLarge(
            f"{upload.what} exceeds {limit} bytes" if upload else f"the body exceeds {limit} bytes"
        )
        if length is not None and not chunked and (not length.isdigit() or int(length) > limit):
            drained = False
            if length.isdigit() and int(length) <= self.drain_limit:
                try:
                    if await _read(receive, self.drain_limit, timeout_s) is None:
                        return  # the client went away
                    drained = True
                except BodyTimeout:
                    pass  # still 413, the reason the body was refused; the connection closes
            await _answer(too_large, scope, receive, send, close=not drained)
            return
        try:
            body = await _read(receive, limit, timeout_s)
        except PayloadTooLarge:
            await _answer(too_large, scope, receive, send, close=True)
            return
        except PhoneFleetError as exc:
            await _answer(exc, scope, receive, send, close=True)
            return
        if body is None:  # the client went away: there is nobody to answer
            return
        pending = [{"type": "http.request", "body": body, "more_body": False}]

        async def replay() -> dict[str, Any]:
            return pending.pop() if pending else await receive()

        await self.app(scope, replay, send)


async def _read(receive: Any, limit: int, timeout_s: float) -> bytes | None:
    """The whole body; None when the client disconnects first. Raises ``PayloadTooLarge`` once it
    outgrows ``limit``, ``BodyTimeout`` when it has not all come within ``timeout_s``."""
    chunks: list[bytes] = []
    size = 0
    try:
        async with asyncio.timeout(timeout_s):
            while True:
                message = await receive()
                if message["type"] != "http.request":
                    return None
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"the body exceeds {limit} bytes")
                chunks.append(chunk)
                if not message.get("more_body"):
                    return b"".join(chunks)
    except TimeoutError:
        raise BodyTimeout(f"the body did not arrive within {timeout_s:g} s ({size} bytes came)") from None


async def _answer(
    exc: PhoneFleetError, scope: dict[str, Any], receive: Any, send: Any, *, close: bool
) -> None:
    """``exc``'s answer from the error table; ``close``: and the connection closed after it (the
    rest of the request is unread, or will never come)."""
    response = response_for(exc)
    if close:
        response.headers["Connection"] = "close"
    await response(scope, receive, send)


def document_body_errors(app: FastAPI) -> None:
    """List ``_BODY_ERRORS`` in ``app``'s OpenAPI schema on every operation that takes a body."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        schema = build()  # FastAPI's, built once and cached; adding to it again changes nothing
        error = {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorOut"}}}
        for operations in schema["paths"].values():
            for operation in operations.values():
                if "requestBody" in operation:
                    for status, description in _BODY_ERRORS.items():
                        operation["responses"].setdefault(
                            status, {"description": description, "content": error}
                        )
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
