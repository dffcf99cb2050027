"""Async engines and db session factories for PostgreSQL (asyncpg) and SQLite (aiosqlite).

SQLite gets WAL (readers never block the writer), a busy timeout (a second writer waits instead of
failing at once) and enforced foreign keys on every connection. SQLAlchemy, not the sqlite3 driver,
emits BEGIN, so SELECTs are inside transactions too; a connection with the execution option
``sqlite_begin_immediate=True`` begins with ``BEGIN IMMEDIATE`` and so takes the write lock first
(the lease update does, so two pool managers never both read the same idle phone).
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

from sqlalchemy import event, exc
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

__all__ = [
    "BEGIN_IMMEDIATE",
    "CONNECT_TIMEOUT_S",
    "PING_AFTER_IDLE_S",
    "DbSession",
    "DbSessions",
    "make_engine",
    "make_sessionmaker",
    "warm_pool",
]

logger = logging.getLogger(__name__)

BEGIN_IMMEDIATE = "sqlite_begin_immediate"  # execution option name; ignored on PostgreSQL

# A pooled PostgreSQL connection idle at least this long is pinged before it is handed out.
PING_AFTER_IDLE_S = 5.0
# How long a new PostgreSQL connection may take (asyncpg's default is 60 s). A server that is down
# usually refuses at once; one whose host is unreachable without a refusal (a paused VM, a firewall
# dropping packets) would hold every request that needs a new connection for the driver's default.
CONNECT_TIMEOUT_S = 5.0

# A db session (SQLAlchemy's unit of work) and the factory that opens them, by the names the rest of
# the code uses: outside orchestrator/db, "session" is a person's hold on a device, never these.
DbSession = AsyncSession
DbSessions = async_sessionmaker[AsyncSession]

_SQLITE_BUSY_TIMEOUT_MS = 5000
_IDLE_SINCE = "phonefleet_idle_since"  # ConnectionRecord.info key: time.monotonic() of the last check-in


def make_engine(
    url: str | URL,
    *,
    echo: bool = False,
    sqlite_foreign_keys: bool = True,
    ping_after_idle_s: float = PING_AFTER_IDLE_S,
) -> AsyncEngine:
    """An async engine for ``url`` (``postgresql+asyncpg://…`` or ``sqlite+aiosqlite:///…``).

    ``sqlite_foreign_keys=False`` is for migrations only: SQLite rebuilds tables to alter them,
    and dropping a referenced table with foreign keys on would fail or cascade.
    The folder of a SQLite database file is created if missing.

    PostgreSQL connections are pinged on checkout only after ``ping_after_idle_s`` idle (see
    ``_ping_idle_connections``), not on every checkout as ``pool_pre_ping`` would; a new one gives
    up after ``CONNECT_TIMEOUT_S`` (then ``DatabaseUnavailable``: 503).
    """
    url = make_url(url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, echo=echo, foreign_keys=sqlite_foreign_keys)
    engine = create_async_engine(
        url,
        echo=echo,
        pool_size=10,
        max_overflow=10,
        pool_recycle=1800,
        connect_args={"timeout": CONNECT_TIMEOUT_S},
    )
    _ping_idle_connections(engine, ping_after_idle_s)
    return engine


def make_sessionmaker(engine: AsyncEngine) -> DbSessions:
    """Db sessions whose objects stay readable after commit (async code cannot lazy-load them back)."""
    return async_sessionmaker(engine, expire_on_commit=False)


def _ping_idle_connections(engine: AsyncEngine, idle_s: float) -> None:
    """Ping a connection on checkout only when it sat idle ``idle_s`` or longer (or never was checked in).

    ``pool_pre_ping`` pings on every checkout; with asyncpg that is BEGIN, ``;``, ROLLBACK: three
    round trips per request, more than the work of a task submission. Dead connections come from a
    PostgreSQL restart or failover, or something killing idle ones. Each checkout first asks the
    driver whether the connection is already known closed (no round trip: a server that stops or
    crashes closes its sockets, and asyncpg notices); a connection idle ``idle_s`` or longer is
    pinged too. Either way a dead connection raises ``InvalidatePoolError``: the pool discards
    every connection older than now (the whole pool, as a restart killed them all) and checks out
    a fresh one. A connection in steady use that is dead without its driver knowing (no FIN came)
    fails its first statement with a disconnect error, which invalidates the pool the same way.
    So a restart costs the requests that reach the database while it is down (503) and, once it
    is back, none: measured in tests/orchestrator/api/test_database_outage.py.
    """
    sync_engine = engine.sync_engine

    @event.listens_for(sync_engine, "connect")
    @event.listens_for(sync_engine, "checkin")
    def _on_checkin(_dbapi_connection: Any, record: Any) -> None:
        record.info[_IDLE_SINCE] = time.monotonic()  # a new connection is known good: no ping at once

    @event.listens_for(sync_engine, "checkout")
    def _on_checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        is_closed = getattr(record.driver_connection, "is_closed", None)  # asyncpg's; a local check
        if is_closed is not None and is_closed():
            raise exc.InvalidatePoolError("pooled connection closed by the server")
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is not None and time.monotonic() - idle_since < idle_s:
            return
        try:
            sync_engine.dialect.do_ping(dbapi_connection)
        except Exception as error:
            if isinstance(
                error, sync_engine.dialect.loaded_dbapi.Error
            ) and sync_engine.dialect.is_disconnect(error, dbapi_connection, None):
                raise exc.InvalidatePoolError(f"stale pooled connection: {error}") from error
            raise


def _sqlite_engine(url: URL, *, echo: bool, foreign_keys: bool) -> AsyncEngine:
    database = url.database or ""
    in_memory = database in ("", ":memory:") or "mode=memory" in str(url)
    if not in_memory and not database.startswith("file:"):
        Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
    engine = create_async_engine(url, echo=echo)

    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # The driver's own transaction handling skips BEGIN for SELECT and DDL; we emit it below.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            if not in_memory:
                cursor.execute("PRAGMA journal_mode=WAL")
                # With WAL, NORMAL never corrupts; a power cut (not a crash) may lose the last commits.
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute(f"PRAGMA busy_timeout={_SQLITE_BUSY_TIMEOUT_MS}")
            cursor.execute(f"PRAGMA foreign_keys={'ON' if foreign_keys else 'OFF'}")
        finally:
            cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(conn: Connection) -> None:
        options = conn.get_execution_options()
        if options.get("isolation_level") == "AUTOCOMMIT":
            return
        dbapi_connection = conn.connection.dbapi_connection
        if dbapi_connection is not None and dbapi_connection.isolation_level is not None:
            # Resetting a pooled connection's isolation level turns the driver's BEGIN back on.
            dbapi_connection.isolation_level = None
        conn.exec_driver_sql("BEGIN IMMEDIATE" if options.get(BEGIN_IMMEDIATE) else "BEGIN")

    return engine


async def warm_pool(engine: AsyncEngine, *, timeout_s: float = 2.0) -> int:
    """Open the PostgreSQL pool's connections now, all at once, and return them to the pool.

    A new asyncpg connection costs tens of milliseconds (TCP, startup, authentication, and the JSON
    codec setup's type introspection), and PostgreSQL forks a backend for it. A server process that
    met its first burst of requests with an empty pool opened a connection per concurrent request,
    and those requests queued behind it (bench/bench_submit.py). Warmed at startup, requests never
    wait for a connect. A database that is down or slow is logged after at most ``timeout_s`` and
    left to the requests (and /readyz) to report. Returns how many connections opened.
    """
    if engine.dialect.name != "postgresql":
        return 0
    size = getattr(engine.pool, "size", lambda: 0)()
    tasks = [asyncio.ensure_future(engine.connect().start()) for _ in range(size)]
    if not tasks:
        return 0
    done, pending = await asyncio.wait(tasks, timeout=timeout_s)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)
    opened = [t.result() for t in done if t.exception() is None]
    for connection in opened:
        await connection.close()  # back to the pool, still connected
    errors = [t.exception() for t in done if t.exception() is not None]
    if errors or pending:
        reason = errors[0] if errors else f"no answer within {timeout_s:g} s"
        logger.warning("could not open every pooled database connection at startup: %s", reason)
    return len(opened)
