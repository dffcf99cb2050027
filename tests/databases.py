"""Throwaway databases for tests: a PostgreSQL database of a test's own (created, then dropped), or SQLite.

PostgreSQL runs already (``.ci/run`` starts it): each throwaway database gets a unique name, so test
runs in parallel never share one, and is dropped with ``WITH (FORCE)`` even if a test left a
connection open.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from tests.aio import run

PG_HOST = "127.0.0.1"
PG_PORT = 5432
PG_USER = "postgres"
_ADMIN_DSN = f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/postgres"


@dataclass(frozen=True)
class PostgresDatabase:
    """A database on the test PostgreSQL server, by name."""

    name: str

    @property
    def url(self) -> str:
        """The SQLAlchemy URL (asyncpg), as ``PHONEFLEET_DATABASE_URL`` takes it."""
        return f"postgresql+asyncpg://{PG_USER}@{PG_HOST}:{PG_PORT}/{self.name}"

    @property
    def dsn(self) -> str:
        """The libpq URL, for asyncpg.connect or psql."""
        return f"postgresql://{PG_USER}@{PG_HOST}:{PG_PORT}/{self.name}"


async def _admin(sql: str) -> None:
    import asyncpg

    try:
        conn = await asyncpg.connect(_ADMIN_DSN, timeout=10)
    except OSError as exc:
        raise RuntimeError(f"PostgreSQL is not reachable at {_ADMIN_DSN} (.ci/run starts it): {exc}") from exc
    try:
        await conn.execute(sql)
    finally:
        await conn.close()


def create_postgres_database(prefix: str = "pftest") -> PostgresDatabase:
    """Create an empty database with a unique name."""
    db = PostgresDatabase(f"{prefix}_{uuid.uuid4().hex[:12]}")
    run(_admin(f'CREATE DATABASE "{db.name}"'), timeout=30)
    return db


def drop_postgres_database(db: PostgresDatabase) -> None:
    """Drop it, closing whatever connections are still open to it."""
    run(_admin(f'DROP DATABASE IF EXISTS "{db.name}" WITH (FORCE)'), timeout=30)


@contextmanager
def throwaway_postgres(prefix: str = "pftest") -> Iterator[PostgresDatabase]:
    """A new empty PostgreSQL database for the ``with`` block, dropped afterwards."""
    db = create_postgres_database(prefix)
    try:
        yield db
    finally:
        drop_postgres_database(db)


def sqlite_url(path: Path) -> str:
    """The SQLAlchemy URL (aiosqlite) of a SQLite file at ``path``."""
    return f"sqlite+aiosqlite:///{path.resolve()}"


def migrate_to_head(url: str) -> None:
    """Run the real migrations (not ``create_all``), as ``phonefleet migrate`` does."""
    from orchestrator.db import migrate

    run(migrate.upgrade(url), timeout=120)


@asynccontextmanager
async def open_sessions(url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """An engine on ``url`` for one event loop (one ``run(...)``), disposed at the end."""
    from orchestrator.db import make_engine, make_sessionmaker

    engine = make_engine(url)
    try:
        yield make_sessionmaker(engine)
    finally:
        await engine.dispose()


def emptied(kind: str, module_pg_url: str, tmp_path: Path, tables: str) -> str:
    """A database with no rows in ``tables`` for one test: the module's PostgreSQL database
    truncated (``kind == "postgresql"``), or a new migrated SQLite file under ``tmp_path``.

    For tests of code whose scope is a whole table (a sweep, a relay), so other tests' rows must
    not be there; ``tables`` is SQL, e.g. ``"tasks, events"`` (truncated with CASCADE)."""
    if kind == "postgresql":
        run(truncate(module_pg_url, tables))
        return module_pg_url
    url = sqlite_url(tmp_path / "phonefleet.db")
    migrate_to_head(url)
    return url


async def truncate(url: str, tables: str) -> None:
    """Empty ``tables`` (SQL list) of the PostgreSQL database at ``url``, with CASCADE."""
    from sqlalchemy import text

    async with open_sessions(url) as sessions, sessions() as session, session.begin():
        await session.execute(text(f"TRUNCATE {tables} CASCADE"))


async def read_device_serial(url: str, device_id: str | uuid.UUID) -> str:
    """What the pool's adb calls a device, read from its row: the API shows serials to the operator
    only, and a test that drives the phone itself plays the fleet's operator."""
    from sqlalchemy import select

    from orchestrator.db import Device

    async with open_sessions(url) as sessions, sessions() as session:
        serial = await session.scalar(select(Device.serial).where(Device.id == uuid.UUID(str(device_id))))
    assert serial is not None, f"no device {device_id}"
    return serial


def device_serial(url: str, device_id: str | uuid.UUID) -> str:
    """``read_device_serial`` from sync code."""
    return run(read_device_serial(url, device_id))
