"""The web dashboard's files (``web/``): ``GET /`` answers ``web/index.html``, ``/app/…`` the rest.

An ASGI wrapper in front of the API rather than a ``Mount`` in its routing table: the table is the
API — its OpenAPI schema, the tenant-isolation walk over every route, the fuzzers — and a folder of
static files is none of that. Everything that is not ``GET``/``HEAD`` of ``/`` or ``/app/…`` goes to
the API untouched, so ``/api``, ``/healthz``, ``/readyz``, ``/metrics`` and ``/docs`` are as before.

The pages are plain ES modules (no build step), so every answer is ``Cache-Control: no-cache``
(revalidated by ETag: an upgrade is seen at the next load, unchanged files cost a 304). A strict
Content-Security-Policy allows only this origin's scripts, styles, images and connections (the
events WebSocket and the WebRTC signalling are same-origin; media arrives over the peer connection).
"""

from __future__ import annotations

import posixpath
from pathlib import Path
from typing import Any

from starlette.exceptions import HTTPException
from starlette.responses import FileResponse, PlainTextResponse
from starlette.staticfiles import StaticFiles

from orchestrator.api.asgi import route_path
from orchestrator.api.errors import error_response

__all__ = ["WEB_DIR", "Dashboard"]

# web/ beside the packages: a checkout, an editable install and the container image (COPY . .) have it.
WEB_DIR = Path(__file__).resolve().parents[2] / "web"
PREFIX = "/app"
# Folders of web/ that are not the dashboard: the TypeScript client (its sources, and in a checkout
# its node_modules) is for API users, so it is not served.
NOT_SERVED = (PREFIX + "/sdk-ts/",)

_HEADERS = {
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Content-Security-Policy": (
        "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob:; "
        "media-src 'self' blob: mediastream:; connect-src 'self'; object-src 'none'; base-uri 'self'; "
        "form-action 'self'; frame-ancestors 'none'"
    ),
}


class Dashboard:
    """Serves ``directory`` at ``/`` (its index.html) and ``/app/…``; passes everything else to ``app``."""

    def __init__(self, app: Any, directory: Path = WEB_DIR) -> None:
        self.app = app
        self.index = directory / "index.html"
        self.files = StaticFiles(directory=directory, check_dir=False)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] not in ("GET", "HEAD"):
            await self.app(scope, receive, send)
            return
        path = route_path(scope)
        if path == "/":
            await self._index(scope, receive, send)
        elif _not_served(path):
            await error_response(404, "not_found", f"no dashboard file at {path}")(scope, receive, send)
        elif path.startswith(PREFIX + "/"):
            inner = {**scope, "root_path": scope.get("root_path", "") + PREFIX}
            try:
                await self.files(inner, receive, _with_headers(send))
            except HTTPException as exc:  # StaticFiles raises for the router's handler; there is none here
                await error_response(exc.status_code, "not_found", f"no dashboard file at {path}")(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _index(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if not self.index.is_file():
            response: Any = PlainTextResponse(
                f"the dashboard's files are not installed ({self.index} is missing); the API is at /docs",
                status_code=404,
            )
        else:
            response = FileResponse(self.index, media_type="text/html", headers=_HEADERS)
        await response(scope, receive, send)


def _not_served(path: str) -> bool:
    # As StaticFiles will see it: "/app/js/../sdk-ts/x" and "/app//sdk-ts/x" are "/app/sdk-ts/x".
    folded = posixpath.normpath(path) + ("/" if path.endswith("/") else "")
    return any(folded.startswith(folder) or folded + "/" == folder for folder in NOT_SERVED)


def _with_headers(send: Any) -> Any:
    async def sending(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"cache-control"]
            headers += [(k.lower().encode(), v.encode()) for k, v in _HEADERS.items()]
            message = {**message, "headers": headers}
        await send(message)

    return sending
