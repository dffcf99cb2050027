"""The PostgreSQL pool's stale-connection policy (orchestrator/db/engine.py ``_ping_idle_connections``).

A pooled connection is pinged on checkout only after sitting idle, and one its driver already knows
closed is never handed out: either way the whole pool is replaced, as after a restart. A dropped connection is made the way a PostgreSQL restart or failover drops it: its server
process is ended with ``pg_terminate_backend`` (the shared server itself is never restarted).
"""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from sqlalchemy import text

from orchestrator.db import make_engine, make_sessionmaker, warm_pool
from orchestrator.db.database import Database
from tests.aio import run, until
from tests.asgi import closed_port
from tests.databases import _ADMIN_DSN


async def _backend_pid(db: Database) -> int:
    async with db.transaction() as session:
        return int(await session.scalar(text("SELECT pg_backend_pid()")))


def _gone(pid: int) -> bool:
    async def check() -> bool:
        conn = await asyncpg.connect(_ADMIN_DSN)
        try:
            return not await conn.fetchval("SELECT count(*) FROM pg_stat_activity WHERE pid = $1", pid)
        finally:
            await conn.close()

    return asyncio.run(check())


async def _terminate(pid: int) -> None:
    """End ``pid``'s server process and wait until it is gone (the pool's socket then sees EOF)."""
    conn = await asyncpg.connect(_ADMIN_DSN)
    try:
        assert await conn.fetchval("SELECT pg_terminate_backend($1)", pid)
    finally:
        await conn.close()
    await until(lambda: _gone(pid), what=f"backend {pid} exited")


def test_an_idle_dead_connection_is_replaced_before_use(pg_url: str) -> None:
    async def scenario() -> tuple[int, int]:
        engine = make_engine(pg_url, ping_after_idle_s=0)  # every checkout counts as idle: pinged
        try:
            db = Database(make_sessionmaker(engine))
            first = await _backend_pid(db)
            await _terminate(first)
            return first, await _backend_pid(db)  # no error: the ping found it dead, a new one served
        finally:
            await engine.dispose()

    first, second = run(scenario())
    assert first != second


def test_a_connection_the_server_closed_is_replaced_unpinged_with_the_whole_pool(pg_url: str) -> None:
    """Not idle long enough to be pinged, but known closed by the driver (the server's end of the
    socket went away, as in a restart): no transaction fails, and its pool-mates, which a restart
    killed too, are replaced with it."""

    async def both(db: Database) -> set[int]:
        # Two transactions at once: two pooled connections.
        async def held() -> int:
            async with db.transaction() as session:
                pid = int(await session.scalar(text("SELECT pg_backend_pid()")))
                await asyncio.sleep(0.2)
                return pid

        return set(await asyncio.gather(held(), held()))

    async def scenario() -> tuple[set[int], int, set[int], set[int]]:
        engine = make_engine(pg_url, ping_after_idle_s=3600)  # never idle long enough to be pinged
        try:
            db = Database(make_sessionmaker(engine))
            before = await both(db)
            killed = min(before)
            await _terminate(killed)
            # No DatabaseUnavailable. A connection already checked out when the closed one was found
            # finishes its transaction, and is replaced at its next checkout.
            return before, killed, await both(db), await both(db)
        finally:
            await engine.dispose()

    before, killed, first, then = run(scenario())
    assert killed not in first and not before & then, (before, killed, first, then)


def test_warm_pool_opens_every_pooled_connection_before_the_first_request(pg_url: str) -> None:
    """An API process starts with its pool full, so its first burst of requests never waits for a connect."""

    async def scenario() -> tuple[int, int, int]:
        engine = make_engine(pg_url)
        try:
            opened = await warm_pool(engine)
            return opened, engine.pool.size(), engine.pool.checkedin()
        finally:
            await engine.dispose()

    opened, size, idle = run(scenario())
    assert opened == size == idle == 10


def test_warm_pool_gives_up_quickly_when_the_database_is_down(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> tuple[int, float]:
        engine = make_engine(f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/none")
        started = asyncio.get_running_loop().time()
        try:
            return await warm_pool(engine, timeout_s=2.0), asyncio.get_running_loop().time() - started
        finally:
            await engine.dispose()

    opened, took = run(scenario())
    # bounded by timeout_s (2 s), not the driver's 60 s connect timeout; generous for a busy machine
    assert opened == 0 and took < 30
    assert "could not open every pooled database connection" in caplog.text
