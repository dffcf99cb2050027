"""Readiness: can this API process reach what a request needs (the database and the broker), and
can the fleet reach the model server?

The model server is reported, not required: while it is down the API still takes tasks (they wait,
``waiting: model_unavailable``, and run once it is back), so a load balancer must not take the API
out of service for it. ``/readyz`` then answers 200 with status ``degraded``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import text

from orchestrator.db.database import Database
from orchestrator.errors import ModelServerUnavailable, PhoneFleetError
from orchestrator.queue import TaskQueue

__all__ = ["REQUIRED", "HealthService", "Readiness"]

CHECK_TIMEOUT_S = 3.0
# What this process cannot serve a request without; any other check only degrades the fleet.
REQUIRED = ("database", "broker")


@dataclass(frozen=True)
class Readiness:
    """Each dependency → "ok" or why not."""

    checks: dict[str, str] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        """Every required check is "ok" (the others may fail: ``degraded``)."""
        return all(self.checks.get(name) == "ok" for name in REQUIRED)

    @property
    def status(self) -> str:
        if not self.ready:
            return "unavailable"
        return "ready" if all(value == "ok" for value in self.checks.values()) else "degraded"


class HealthService:
    """Checks run concurrently, each under its own deadline."""

    def __init__(
        self,
        db: Database,
        queue: TaskQueue,
        *,
        model_url: str | None = None,
        model_api_key: str | None = None,
    ) -> None:
        self.db = db
        self.queue = queue
        self.model_url = model_url.rstrip("/") if model_url else None
        self.model_api_key = model_api_key

    async def readiness(self) -> Readiness:
        """Database ``select 1``, a broker connection and (when configured) the model server's
        ``GET /models``; never raises for a dependency that is down."""
        checks = {"database": self._database(), "broker": self.queue.ping()}
        if self.model_url:
            checks["model"] = self._model()
        results = await asyncio.gather(*(self._check(check) for check in checks.values()))
        return Readiness(dict(zip(checks, results, strict=True)))

    async def _model(self) -> None:
        """The model server answers HTTP (any status below 500: a server without ``/models`` still
        answers its chat route); a refused connection, a timeout or a 5xx is an outage."""
        assert self.model_url is not None
        headers = {"Authorization": f"Bearer {self.model_api_key}"} if self.model_api_key else {}
        try:
            async with httpx.AsyncClient(timeout=CHECK_TIMEOUT_S, trust_env=False) as client:
                response = await client.get(f"{self.model_url}/models", headers=headers)
        except httpx.TimeoutException as exc:
            raise TimeoutError from exc
        except httpx.HTTPError as exc:
            raise ModelServerUnavailable(f"model server unreachable: {type(exc).__name__}") from exc
        if response.status_code >= 500:
            raise ModelServerUnavailable(f"model server answers HTTP {response.status_code}")

    async def _database(self) -> None:
        async with self.db.transaction() as db_session:
            await db_session.execute(text("select 1"))

    @staticmethod
    async def _check(check: Coroutine[Any, Any, None]) -> str:
        try:
            await asyncio.wait_for(check, CHECK_TIMEOUT_S)
        except TimeoutError:
            return f"no answer within {CHECK_TIMEOUT_S:g} s"
        except PhoneFleetError as exc:
            return exc.message
        return "ok"
