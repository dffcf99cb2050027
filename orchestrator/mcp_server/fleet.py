"""The REST API as the MCP tools call it: an ``httpx.AsyncClient`` and the caller's ``Authorization``."""

from __future__ import annotations

from typing import Any

import httpx

from orchestrator.client import PhoneFleetAPIError

__all__ = ["Fleet"]


class Fleet:
    """REST calls for one caller. Raises ``PhoneFleetAPIError`` for a non-2xx answer."""

    def __init__(self, http: httpx.AsyncClient, authorization: str | None) -> None:
        self.http = http
        self.authorization = authorization

    async def call(
        self, method: str, path: str, *, json: Any = None, params: dict[str, Any] | None = None
    ) -> httpx.Response:
        headers = {"Authorization": self.authorization} if self.authorization else {}
        response = await self.http.request(method, path, json=json, params=params, headers=headers)
        if response.is_error:
            raise PhoneFleetAPIError.from_response(response)
        return response

    async def json(self, method: str, path: str, **kwargs: Any) -> Any:
        return (await self.call(method, path, **kwargs)).json()
