"""Db sessions for the services, translating "the database is down or busy" into ``DatabaseUnavailable``.

This is the one place a driver's connection error becomes a PhoneFleet error: unreachable
PostgreSQL, a server shutting down, starting up or in crash recovery, too many connections, an
exhausted connection pool, or SQLite's "database is locked" after the busy timeout (one writer at
a time) all answer 503 with Retry-After instead of a 500. Code that reaches the database without
``Database`` (the ``LeaseStore``) wraps its calls in ``unavailable_as_error()``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import Executable
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine

from orchestrator.db import BEGIN_IMMEDIATE, DbSession, DbSessions
from orchestrator.errors import DatabaseUnavailable

__all__ = ["Database", "as_unavailable", "unavailable_as_error"]

_UNAVAILABLE = (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError, OSError)
# SQLSTATEs of a server that is there but takes no work for now. asyncpg raises them as plain
# PostgresErrors (SQLAlchemy's generic DBAPIError), not as connection errors: admin_shutdown (a
# fast stop ends the session), crash_shutdown, cannot_connect_now (shutting down, starting up, in
# recovery) and too_many_connections. Class 08 (connection_exception) is matched by its prefix.
_UNAVAILABLE_SQLSTATES = frozenset({"57P01", "57P02", "57P03", "53300"})


def as_unavailable(exc: BaseException) -> DatabaseUnavailable | None:
    """The ``DatabaseUnavailable`` that ``exc`` stands for when it says the database is down or busy
    (retry later); None when it says something else (a wrong statement, a constraint)."""
    if not isinstance(exc, _UNAVAILABLE):
        if not isinstance(exc, sa_exc.DBAPIError):
            return None
        sqlstate = getattr(exc.orig, "sqlstate", None)
        outage = isinstance(sqlstate, str) and (
            sqlstate.startswith("08") or sqlstate in _UNAVAILABLE_SQLSTATES
        )
        if not (outage or exc.connection_invalidated):  # connection_invalidated: SQLAlchemy saw a disconnect
            return None
    return DatabaseUnavailable(f"database unavailable: {_first_line(exc)}")


@asynccontextmanager
async def unavailable_as_error() -> AsyncIterator[None]:
    """Raise ``DatabaseUnavailable`` for what ``as_unavailable`` says is an outage; the rest unchanged."""
    try:
        yield
    except (*_UNAVAILABLE, sa_exc.DBAPIError) as exc:
        outage = as_unavailable(exc)
        if outage is None:
            raise
        raise outage from exc


class Database:
    """The sessionmaker, plus transactions whose connection failures are typed."""

    def __init__(self, sessions: DbSessions) -> None:
        self.sessions = sessions
        bind = sessions.kw.get("bind")
        self.engine: AsyncEngine | None = bind if isinstance(bind, AsyncEngine) else None
        # Statements that are a transaction on their own: no BEGIN/COMMIT round trips (see execute_alone).
        self._autocommit = (
            None if self.engine is None else self.engine.execution_options(isolation_level="AUTOCOMMIT")
        )

    async def execute_alone(self, statement: Executable, params: dict[str, Any]) -> None:
        """Run one statement as its own implicit transaction, on a pooled connection, without a session.

        For a single statement that must be atomic by itself (a data-modifying CTE on PostgreSQL is):
        no BEGIN/COMMIT round trips, and none of the ORM session's bookkeeping, on a hot path.
        """
        assert self._autocommit is not None, "execute_alone needs an engine-bound sessionmaker"
        async with unavailable_as_error(), self._autocommit.connect() as connection:
            await connection.execute(statement, params)

    @asynccontextmanager
    async def transaction(self, *, write: bool = False) -> AsyncIterator[DbSession]:
        """A db session inside one transaction, committed when the block ends without an error.

        ``write=True`` is for read-then-write transactions: on SQLite they take the write lock
        first (BEGIN IMMEDIATE), since upgrading a read snapshot fails at once when another
        writer committed in between instead of waiting out the busy timeout.
        """
        async with unavailable_as_error(), self.sessions() as db_session, db_session.begin():
            if write:
                await db_session.connection(execution_options={BEGIN_IMMEDIATE: True})
            yield db_session


def _first_line(exc: BaseException) -> str:
    # SQLAlchemy messages carry the SQL and a link on later lines; the first one is the reason.
    return (str(getattr(exc, "orig", None) or exc).splitlines() or [type(exc).__name__])[0]
