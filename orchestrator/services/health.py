"""Readiness: can this API process reach what a request needs (the database and the broker)?"""

from __future__ import annotations

import asyncio
from collections.abc import Coroutine
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import text

from orchestrator.db.database import Database
from orchestrator.errors import PhoneFleetError
from orchestrator.queue import TaskQueue

__all__ = ["HealthService", "Readiness"]

CHECK_TIMEOUT_S = 3.0


@dataclass(frozen=True)
class Readiness:
    """Each dependency → "ok" or why not."""

    checks: dict[str, str] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return all(value == "ok" for value in self.checks.values())


class HealthService:
    """Checks run concurrently, each under its own deadline."""

    def __init__(self, db: Database, queue: TaskQueue) -> None:
        self.db = db
        self.queue = queue

    async def readiness(self) -> Readiness:
        """Database ``select 1`` and a broker connection; never raises for a dependency that is down."""
        database, broker = await asyncio.gather(self._check(self._database()), self._check(self.queue.ping()))
        return Readiness({"database": database, "broker": broker})

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
