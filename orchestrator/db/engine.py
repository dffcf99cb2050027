"""Async engines and session factories for PostgreSQL (asyncpg) and SQLite (aiosqlite).

SQLite gets WAL (readers never block the writer), a busy timeout (a second writer waits instead of
failing at once) and enforced foreign keys on every connection. SQLAlchemy, not the sqlite3 driver,
emits BEGIN, so SELECTs are inside transactions too; a connection with the execution option
``sqlite_begin_immediate=True`` begins with ``BEGIN IMMEDIATE`` and so takes the write lock first
(the lease update does, so two pool managers never both read the same idle phone).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine

__all__ = ["BEGIN_IMMEDIATE", "make_engine", "make_sessionmaker"]

BEGIN_IMMEDIATE = "sqlite_begin_immediate"  # execution option name; ignored on PostgreSQL

_SQLITE_BUSY_TIMEOUT_MS = 5000


def make_engine(url: str | URL, *, echo: bool = False, sqlite_foreign_keys: bool = True) -> AsyncEngine:
    """An async engine for ``url`` (``postgresql+asyncpg://…`` or ``sqlite+aiosqlite:///…``).

    ``sqlite_foreign_keys=False`` is for migrations only: SQLite rebuilds tables to alter them,
    and dropping a referenced table with foreign keys on would fail or cascade.
    The folder of a SQLite database file is created if missing.
    """
    url = make_url(url)
    if url.get_backend_name() == "sqlite":
        return _sqlite_engine(url, echo=echo, foreign_keys=sqlite_foreign_keys)
    return create_async_engine(
        url,
        echo=echo,
        pool_size=10,
        max_overflow=10,
        pool_pre_ping=True,  # a PostgreSQL restart or failover leaves dead connections in the pool
        pool_recycle=1800,
    )


def make_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions whose objects stay readable after commit (async code cannot lazy-load them back)."""
    return async_sessionmaker(engine, expire_on_commit=False)


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
