"""``X-Request-ID``: one id per request, in every log line the request causes and on its answer.

``RequestId`` takes a well-formed incoming ``X-Request-ID`` (1-128 characters of letters, digits and
``_ . : / + = @ -``: what proxies and tracing systems send) or makes one (32 hex digits), binds it
as ``request_id`` in the log context (``device_pool.logs.bind``) while the app handles the request,
and adds it to the response's headers. It is plain ASGI (no ``BaseHTTPMiddleware``, which would
wrap every body in a stream): the submission fast path sits behind it. ``install_request_id`` puts it in front
of the whole stack, Starlette's error middleware included, so a 500 carries the id too.
"""

from __future__ import annotations

import os
import re
from typing import Any

from device_pool.logs import bind

__all__ = ["HEADER", "RequestId", "install_request_id"]

HEADER = b"x-request-id"
_WELL_FORMED = re.compile(rb"[A-Za-z0-9_.:/+=@-]{1,128}")


class RequestId:
    """ASGI middleware: a request id per HTTP request or WebSocket, logged and echoed back."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = next((value for name, value in scope["headers"] if name == HEADER), None)
        rid = given if given is not None and _WELL_FORMED.fullmatch(given) else os.urandom(16).hex().encode()
        start = "http.response.start" if scope["type"] == "http" else "websocket.accept"

        async def send_with_id(message: dict[str, Any]) -> None:
            if message["type"] == start:
                # A new list: the app's may be shared between responses (prebuilt headers).
                message = {**message, "headers": [*message.get("headers", ()), (HEADER, rid)]}
            await send(message)

        with bind(request_id=rid.decode()):
            await self.app(scope, receive, send_with_id)


def install_request_id(app: Any) -> None:
    """Put ``RequestId`` outermost in a Starlette ``app``: in front of its error middleware and every
    middleware added with ``add_middleware`` (whatever is added later stays behind it)."""
    build = app.build_middleware_stack
    app.build_middleware_stack = lambda: RequestId(build())
