"""The MCP server over streamable HTTP, served by the API process at ``/mcp``.

Each MCP request carries the caller's ``Authorization: Bearer pf_…``; its tools call the REST API
of this same app in process (``httpx.ASGITransport``, no socket) with that header, so they pass the
same authentication, tenant isolation, roles and limits as any REST call. A request without the
header is refused with 401 before the MCP layer sees it.

Stateless mode (no MCP session kept in memory between requests), so any API replica behind a load
balancer can answer any request; JSON answers rather than SSE streams. DNS-rebinding protection is
off: it guards servers that trust whoever reaches them, and this one trusts only a Bearer key.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
from mcp.server.mcpserver import Context
from mcp.server.transport_security import TransportSecuritySettings
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from orchestrator.async_client import AsyncPhoneFleetClient
from orchestrator.mcp_server.tools import build_server

__all__ = ["MCP_PATH", "McpEndpoint"]

MCP_PATH = "/mcp"


class McpEndpoint:
    """The ``/mcp`` route for ``app`` and the lifespan it needs (``async with endpoint.running():``)."""

    def __init__(self, app: ASGIApp) -> None:
        self._http = httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://phonefleet.internal", timeout=None
        )

        def client_for(ctx: Context) -> AsyncPhoneFleetClient:
            authorization = (ctx.headers or {}).get("authorization", "")
            key = authorization.removeprefix("Bearer ").strip()
            return AsyncPhoneFleetClient(http=self._http, api_key=key)  # the shared client is not closed

        self.server = build_server(client_for)
        self._app = self.server.streamable_http_app(
            streamable_http_path=MCP_PATH, stateless_http=True, json_response=True,
            transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False),
        )  # fmt: skip
        # An ASGI app (not a function) as the endpoint: the request passes through untouched.
        self.route = Route(MCP_PATH, endpoint=self, methods=["GET", "POST", "DELETE"])

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers") or [])
        if b"authorization" not in headers:
            response: Any = JSONResponse(
                {"error": "unauthenticated", "message": "send your API key: Authorization: Bearer pf_…"},
                status_code=401, headers={"WWW-Authenticate": 'Bearer realm="phonefleet"'},
            )  # fmt: skip
            await response(scope, receive, send)
            return
        await self._app(scope, receive, send)

    @contextlib.asynccontextmanager
    async def running(self) -> AsyncIterator[None]:
        """The MCP session manager's task group, for as long as the API serves."""
        async with self._http, self.server.session_manager.run():
            yield
