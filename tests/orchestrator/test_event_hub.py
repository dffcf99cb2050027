"""The events hub and its wake-ups on real databases and Redis: out-of-order commits, gaps, buffers."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orchestrator.db import Event, utcnow
from orchestrator.db.database import Database
from orchestrator.notifier import EventSignal
from orchestrator.services.events import EventHub, EventMessage, HubClosed, SlowConsumer, Subscription
from orchestrator.services.outbox import IdWindow
from tests.aio import run, until
from tests.conftest import REDIS_URL
from tests.databases import open_sessions
from tests.orchestrator.factories import make_task

WAIT_S = 10.0


@dataclass
class Setup:
    sessions: async_sessionmaker[AsyncSession]
    hub: EventHub
    tenant_id: uuid.UUID
    task_id: uuid.UUID


@asynccontextmanager
async def hub_on(url: str, **options: Any) -> AsyncIterator[Setup]:
    async with open_sessions(url) as sessions:
        async with sessions() as session, session.begin():
            task = await make_task(session)
        hub = EventHub(Database(sessions), EventSignal(None), poll_s=0.05, **options)
        try:
            yield Setup(sessions, hub, task.tenant_id, task.id)
        finally:
            await hub.close()


async def add_event(session: AsyncSession, s: Setup, type_: str = "test.event") -> int:
    result = await session.execute(
        insert(Event)
        .values(tenant_id=s.tenant_id, task_id=s.task_id, type=type_, payload={}, created_at=utcnow())
        .returning(Event.id)
    )
    return int(result.scalar_one())


async def commit_event(s: Setup, type_: str = "test.event") -> int:
    async with s.sessions() as session, session.begin():
        return await add_event(session, s, type_)


async def drain(sub: Subscription, count: int) -> list[EventMessage]:
    got: list[EventMessage] = []
    while len(got) < count:
        message = await sub.next(WAIT_S)
        assert message is not None, f"only {len(got)} of {count} events arrived"
        got.append(message)
    return got


def test_a_lower_id_committed_late_is_delivered_first(migrated_pg_url: str) -> None:
    """PostgreSQL hands out ids at INSERT: 11 may commit before 10. The stream still says 10, 11."""

    async def scenario() -> tuple[list[int], list[int], int, int]:
        async with hub_on(migrated_pg_url, gap_s=30.0) as s:
            live = await s.hub.subscribe(s.tenant_id)
            async with s.sessions() as slow:
                await slow.begin()
                early = await add_event(slow, s)  # taken, not committed
                late = await commit_event(s)
                await until(lambda: (s.hub.high or 0) >= late, WAIT_S, "the hub read the later id")
                assert await live.next(0) is None, "the later id waits for the earlier one"
                # A subscriber arriving now: its replay must leave the held id to the live feed.
                resumed = await s.hub.subscribe(s.tenant_id, after=early - 1)
                replayed = [m.id async for m in resumed.replay()]
                await slow.commit()
            got = [m.id for m in await drain(live, 2)]
            resumed_live = [m.id for m in await drain(resumed, 2)]
            return got, replayed + resumed_live, early, late

    got, resumed, early, late = run(scenario())
    assert early < late
    assert got == [early, late]
    assert resumed == [early, late], "each event exactly once, in order"


def test_an_id_that_never_commits_is_given_up_after_the_gap(migrated_pg_url: str) -> None:
    async def scenario() -> tuple[list[int], int]:
        async with hub_on(migrated_pg_url, gap_s=0.3) as s:
            live = await s.hub.subscribe(s.tenant_id)
            async with s.sessions() as doomed:
                await doomed.begin()
                await add_event(doomed, s)
                await doomed.rollback()  # the sequence does not roll back: a permanent hole
            after = await commit_event(s)
            return [m.id for m in await drain(live, 1)], after

    got, after = run(scenario())
    assert got == [after]


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_a_subscriber_that_falls_behind_its_buffer_is_ended(
    request: pytest.FixtureRequest, backend: str
) -> None:
    url = request.getfixturevalue("migrated_pg_url" if backend == "postgresql" else "migrated_sqlite_url")

    async def scenario() -> None:
        async with hub_on(url, buffer=2) as s:
            slow = await s.hub.subscribe(s.tenant_id)
            reader = await s.hub.subscribe(s.tenant_id)
            for _ in range(3):
                event_id = await commit_event(s)
                # The reader keeps up (and shows the hub handed each one out); the slow one never reads.
                assert [m.id for m in await drain(reader, 1)] == [event_id]
            with pytest.raises(SlowConsumer, match="more than 2 events"):
                await slow.next(WAIT_S)

    run(scenario())


def test_closing_the_hub_ends_its_subscriptions(migrated_sqlite_url: str) -> None:
    async def scenario() -> None:
        async with hub_on(migrated_sqlite_url) as s:
            sub = await s.hub.subscribe(s.tenant_id)
            waiting = asyncio.create_task(sub.next(WAIT_S))
            await s.hub.close()
            with pytest.raises(HubClosed):
                await waiting
            with pytest.raises(HubClosed):
                await s.hub.subscribe(s.tenant_id)

    run(scenario())


def test_id_window_tracks_holes_until_they_fill_or_expire() -> None:
    window = IdWindow(high=10, gap_s=60.0)
    assert window.observe([11, 14, 12]) == [11, 12, 14]
    assert sorted(window.missing) == [13] and window.high == 14 and window.floor() == 13
    assert window.observe([13, 14, 15]) == [13, 15], "a late id is new; one already read is not"
    assert window.missing == {} and window.floor() is None
    expiring = IdWindow(high=0, gap_s=0.0)
    expiring.observe([2])
    assert expiring.expire() == [1] and expiring.missing == {}


def test_a_notify_reaches_a_reader_in_another_process_through_redis(redis_prefix: str) -> None:
    async def scenario() -> tuple[bool, bool]:
        channel = f"{redis_prefix}events"
        writer, reader = EventSignal(REDIS_URL, channel=channel), EventSignal(REDIS_URL, channel=channel)
        try:
            token = await reader.arm()  # subscribes before returning
            writer.notify()
            woke = await reader.wait(token, WAIT_S)
            local = EventSignal(None)
            local_token = await local.arm()
            local.notify()
            return woke, local_token.is_set()
        finally:
            await writer.close()
            await reader.close()

    assert run(scenario()) == (True, True)


def test_worker_writes_wake_event_readers(migrated_sqlite_url: str) -> None:
    from worker.run.rows import TaskRows

    async def scenario() -> tuple[bool, bool, bool]:
        async with hub_on(migrated_sqlite_url) as s:
            signal = EventSignal(None)
            rows = TaskRows(Database(s.sessions), s.task_id, "worker-1", notifier=signal)
            rows.tenant_id = s.tenant_id
            read_token = await signal.arm()
            await rows.read()  # reads wake nobody
            quiet = not read_token.is_set()
            token = await signal.arm()
            await rows.add_event("task.question", {"question": "which size?"})
            step_token = await signal.arm()
            await rows.add_step({"index": 0, "timings": {}}, {"index": 0})
            return quiet, token.is_set(), step_token.is_set()

    assert run(scenario()) == (True, True, True)
