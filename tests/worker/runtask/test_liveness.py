"""Worker liveness on the task row (``worker/run/rows.py``), on a migrated PostgreSQL database:
a re-claim ends the lost run's lease in its own transaction, and a stale run's stamps are refused."""

from __future__ import annotations

import asyncio
import datetime as dt
import sqlite3
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from device_pool.pool import LeaseStore
from orchestrator.db import DeviceState, Event, Step, Task, TaskStatus, make_engine, make_sessionmaker
from orchestrator.db.database import Database
from tests.aio import run, until
from tests.databases import migrate_to_head, open_sessions, sqlite_url
from tests.orchestrator.factories import in_seconds, make_device, make_task
from worker.agent.steering import AgentSteering
from worker.run.hooks import CLAIM_LOST, Watcher
from worker.run.rows import TaskRows

LOST_S = 15.0


async def _task_with_lease(
    url: str, store: LeaseStore, holder: str, **fields: object
) -> tuple[uuid.UUID, uuid.UUID]:
    """A task held by ``holder`` (``fields`` on its row) and a phone leased to it; (task id, lease id)."""
    tag = uuid.uuid4().hex
    async with open_sessions(url) as sessions, sessions() as session, session.begin():
        task = await make_task(session, worker_id=holder, **fields)
        await make_device(session, profile={"tag": tag})
    grant = await store.acquire(holder=holder, tenant_id=task.tenant_id, task_id=task.id, profile={"tag": tag},
                                ttl_s=600)  # fmt: skip
    assert grant is not None
    return task.id, grant.lease_id


def test_a_reclaim_ends_the_lost_runs_lease_and_the_lost_run_is_refused(pg_url: str) -> None:
    async def body() -> None:
        engine = make_engine(pg_url)
        store, db = LeaseStore.for_engine(engine), Database(make_sessionmaker(engine))
        try:
            stale = {"status": TaskStatus.RUNNING, "attempts": 1, "claimed_at": in_seconds(-60),
                     "heartbeat_at": in_seconds(-LOST_S - 1)}  # fmt: skip
            task_id, lease_id = await _task_with_lease(pg_url, store, "host:1/dead", **stale)
            dead = TaskRows(db, task_id, "host:1/dead")
            dead.stale_s = LOST_S  # as its own claim set it
            claim = await TaskRows(db, task_id, "host:2/next").claim(stale_s=LOST_S, max_attempts=2)
            assert claim is not None and claim.reclaimed and claim.attempts == 2 and claim.ended_leases == 1
            lease = await store.lease(lease_id)
            assert (
                lease is not None and lease.release_reason == "worker_lost" and lease.released_at is not None
            )
            assert (await store.device(lease.device_id)).state == DeviceState.RESETTING  # type: ignore[union-attr]
            assert not await dead.heartbeat()  # the lost run finds its claim gone: it stops (claim_lost)

            # On its last attempt the task is failed worker_lost instead, and the lease ended too.
            task_id, lease_id = await _task_with_lease(
                pg_url, store, "host:1/dead2", **(stale | {"attempts": 2})
            )
            assert await TaskRows(db, task_id, "host:2/next2").claim(stale_s=LOST_S, max_attempts=2) is None
            assert (await store.lease(lease_id)).release_reason == "worker_lost"  # type: ignore[union-attr]
        finally:
            await store.close()
            await engine.dispose()

    run(body())


def test_a_stamp_is_refused_once_the_row_is_stale_though_nobody_took_it_over(pg_url: str) -> None:
    """Past ``stale_s`` the task may be taken over at any moment, so its run must stop either way."""

    async def body() -> None:
        engine = make_engine(pg_url)
        db = Database(make_sessionmaker(engine))
        try:
            async with open_sessions(pg_url) as sessions, sessions() as session, session.begin():
                task_id = (await make_task(session)).id
            rows = TaskRows(db, task_id, "host:1/a")
            assert await rows.claim(stale_s=LOST_S, max_attempts=2) is not None
            assert await rows.heartbeat()
            async with db.transaction() as session:
                await session.execute(
                    update(Task).where(Task.id == task_id).values(heartbeat_at=in_seconds(-LOST_S - 1))
                )
            assert not await rows.heartbeat()
            assert (await rows.read()).worker_id == "host:1/a"  # type: ignore[union-attr]  # still its, but stale
        finally:
            await engine.dispose()

    run(body())


def test_a_run_that_cannot_stamp_stops_itself_before_its_task_counts_as_lost(tmp_path: Path) -> None:
    """A live run keeps stamping; once the database refuses its writes (another connection holds
    SQLite's write lock, as a database out of reach would), its watcher cancels it ``claim_lost``
    while its last stamp is still younger than ``lost_s``: nobody could have taken it over yet."""
    url = sqlite_url(tmp_path / "phonefleet.db")
    migrate_to_head(url)
    lost_s, beat_s = 1.5, 0.25

    async def body() -> None:
        engine = make_engine(url)
        try:
            async with open_sessions(url) as sessions, sessions() as session, session.begin():
                task_id = (await make_task(session)).id
            rows = TaskRows(Database(make_sessionmaker(engine)), task_id, "host:1/a")
            claim = await rows.claim(stale_s=lost_s, max_attempts=2)
            assert claim is not None
            steering = AgentSteering()
            watcher = Watcher(rows, steering, interval_s=0.05, task_heartbeat_s=beat_s, lost_s=lost_s)
            watcher.start()
            try:
                first = await _stamp(url, task_id)
                # Stamps keep coming for longer than lost_s, and the live run goes on.
                await until(lambda: run_in_thread(_stamp(url, task_id)) > first + dt.timedelta(seconds=lost_s),
                            timeout=10, what="stamps for longer than lost_s")  # fmt: skip
                assert not steering.cancelled
                with sqlite3.connect(tmp_path / "phonefleet.db", isolation_level=None) as blocker:
                    blocker.execute("BEGIN IMMEDIATE")  # the write lock: every stamp waits, then fails
                    await until(lambda: steering.cancelled, timeout=10, what="the run stopped itself")
                    stopped = dt.datetime.now(dt.UTC)
                    blocker.execute("ROLLBACK")
                assert steering.cancel_reason == CLAIM_LOST
                assert stopped - await _stamp(url, task_id) < dt.timedelta(seconds=lost_s)
            finally:
                await watcher.stop()
        finally:
            await engine.dispose()

    run(body())


async def _stamp(url: str, task_id: uuid.UUID) -> dt.datetime:
    async with open_sessions(url) as sessions, sessions() as session:
        task = await session.get_one(Task, task_id)
        assert task.heartbeat_at is not None
        return task.heartbeat_at.replace(tzinfo=task.heartbeat_at.tzinfo or dt.UTC)


def run_in_thread(coro: Any) -> Any:
    """A coroutine run to its end on a thread of its own (``until`` polls its predicate on a thread)."""
    return asyncio.run(coro)


def test_a_lost_worker_is_retried_unless_its_task_acted_and_may_not_be(pg_url: str) -> None:
    """The claim that takes over a lost worker's task applies the retry rule after acting: a task
    that tapped and said ``retry_after_acting: false`` fails ``worker_lost``; left null, it is
    claimed again, the lost attempt announced by a ``task.retrying`` event."""

    async def body() -> None:
        engine = make_engine(pg_url)
        db = Database(make_sessionmaker(engine))
        stale = {"status": TaskStatus.RUNNING, "attempts": 1, "worker_id": "host:1/dead",
                 "claimed_at": in_seconds(-60), "heartbeat_at": in_seconds(-LOST_S - 1)}  # fmt: skip
        tap = {"index": 0, "action": {"name": "Tap", "element": [500, 500]}, "result": "ok"}
        try:
            ids = {}
            for choice in (False, None):
                async with open_sessions(pg_url) as sessions, sessions() as session, session.begin():
                    task = await make_task(session, retry_after_acting=choice, **stale)
                    session.add(Step(task_id=task.id, **tap))
                ids[choice] = task.id
            assert await TaskRows(db, ids[False], "host:2/a").claim(stale_s=LOST_S, max_attempts=3) is None
            claim = await TaskRows(db, ids[None], "host:2/b").claim(stale_s=LOST_S, max_attempts=3)
            assert claim is not None and claim.attempts == 2 and claim.first_step == 1
            async with open_sessions(pg_url) as sessions, sessions() as session:
                refused = await session.get_one(Task, ids[False])
                assert (refused.status, refused.reason) == (TaskStatus.FAILED, "worker_lost")
                assert (
                    "not retried: it had acted on the phone and retry_after_acting is false"
                    in refused.message
                )
                retrying = list(await session.scalars(
                    select(Event.payload).where(Event.task_id == ids[None], Event.type == "task.retrying")))  # fmt: skip
                assert [(p["attempt"], p["reason"]) for p in retrying] == [(1, "worker_lost")]
        finally:
            await engine.dispose()

    run(body())


def test_a_requeued_task_is_claimed_again_avoiding_its_failed_phone_and_a_cancel_wins(pg_url: str) -> None:
    async def body() -> None:
        engine = make_engine(pg_url)
        db = Database(make_sessionmaker(engine))
        failed = uuid.uuid4()
        try:
            async with open_sessions(pg_url) as sessions, sessions() as session, session.begin():
                task_id = (await make_task(session)).id
            first = TaskRows(db, task_id, "host:1/a")
            assert (await first.claim(stale_s=LOST_S, max_attempts=3)) is not None
            status = await first.requeue(reason="device_error", message="phone unreachable", attempt=1,
                                         max_attempts=3, delay_s=30, device_id=failed, avoid_device=True)  # fmt: skip
            assert status == TaskStatus.QUEUED
            async with open_sessions(pg_url) as sessions, sessions() as session:
                row = await session.get_one(Task, task_id)
                assert (row.status, row.worker_id, row.attempts) == (TaskStatus.QUEUED, None, 1)
                assert row.waiting["kind"] == "retrying" and "on another phone" in row.waiting["message"]
                assert row.retry_at is not None and row.retry_at > in_seconds(25)
            assert not await first.heartbeat()  # the requeued attempt holds nothing any more

            second = TaskRows(db, task_id, "host:1/b")
            claim = await second.claim(stale_s=LOST_S, max_attempts=3)
            assert claim is not None and claim.attempts == 2 and claim.avoid_devices == (failed,)
            async with db.transaction() as session:
                await session.execute(
                    update(Task).where(Task.id == task_id).values(result={"cancel_requested_at": "now"})
                )
            # A cancel asked for meanwhile ends the task instead of another attempt.
            assert await second.requeue(reason="lease_lost", message="lost", attempt=2, max_attempts=3,
                                        delay_s=4) == TaskStatus.CANCELLED  # fmt: skip
            async with open_sessions(pg_url) as sessions, sessions() as session:
                row = await session.get_one(Task, task_id)
                assert (row.status, row.waiting, row.retry_at) == (TaskStatus.CANCELLED, None, None)
        finally:
            await engine.dispose()

    run(body())
