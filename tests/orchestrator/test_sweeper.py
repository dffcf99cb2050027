"""The task sweeper on a migrated database of this module's own (PostgreSQL and SQLite) and the real Redis."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from sqlalchemy import select, update

from device_pool.pool import RELEASED, LeaseGrant, LeaseStore, LocalSignal
from orchestrator.db import DeviceState, Event, Task, TaskStatus, WaitingKind, make_engine, waiting
from orchestrator.db.database import Database
from orchestrator.queue import TASKS_QUEUE, TaskQueue
from orchestrator.services.sweeper import REQUEUED, TaskSweeper
from orchestrator.settings import Settings
from tests.aio import run
from tests.conftest import REDIS_URL
from tests.databases import emptied, migrate_to_head, open_sessions, throwaway_postgres
from tests.orchestrator.conftest import decode_celery_message
from tests.orchestrator.factories import in_seconds, make_device, make_task, make_tenant

STALE_S = 60.0
# TaskSweeper's max_attempts (tasks.max_infra_attempts' default): a stale task with as many is failed.
LAST = 3


@pytest.fixture(scope="module")
def sweeper_pg_url() -> Iterator[str]:
    # A database of the module's own: a sweep touches every task in it, not just this test's.
    with throwaway_postgres() as db:
        migrate_to_head(db.url)
        yield db.url


@pytest.fixture(params=["postgresql", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    # Each test starts from no tasks: the sweep's scope is the whole table.
    pg = request.getfixturevalue("sweeper_pg_url") if request.param == "postgresql" else ""
    return emptied(request.param, pg, tmp_path, "tasks, events")


def _messages(prefix: str) -> list[dict[str, Any]]:
    r = redis.Redis.from_url(REDIS_URL)
    try:
        raw = r.lrange(f"{prefix}{TASKS_QUEUE}", 0, -1)
    finally:
        r.close()
    return [decode_celery_message(item) for item in raw]


async def _add_task(url: str, **fields: Any) -> uuid.UUID:
    async with open_sessions(url) as sessions, sessions() as session, session.begin():
        return (await make_task(session, **fields)).id


async def _sweep(url: str, queue: TaskQueue, **kwargs: Any) -> Any:
    async with open_sessions(url) as sessions:
        return await TaskSweeper(Database(sessions), queue, stale_after_s=STALE_S, **kwargs).sweep()


async def _state(url: str, task_id: uuid.UUID) -> tuple[Task, list[Event]]:
    async with open_sessions(url) as sessions, sessions() as session:
        task = await session.get_one(Task, task_id)
        events = (
            await session.scalars(select(Event).where(Event.task_id == task_id).order_by(Event.id))
        ).all()
        return task, list(events)


@pytest.fixture
def queue(tmp_path: Path, redis_prefix: str) -> Iterator[TaskQueue]:
    q = TaskQueue.from_settings(
        Settings(data_dir=tmp_path / "data", redis_url=REDIS_URL), key_prefix=redis_prefix
    )
    yield q
    q.close()


def test_queued_task_past_grace_is_requeued_once(url: str, queue: TaskQueue, redis_prefix: str) -> None:
    old = run(_add_task(url, created_at=in_seconds(-120)))
    fresh = run(_add_task(url))

    report = run(_sweep(url, queue))
    assert report.requeued == [old] and report.failed == []
    [message] = _messages(redis_prefix)
    assert message["task"] == "phonefleet.run_task" and message["args"] == [str(old)]
    task, events = run(_state(url, old))
    assert task.status == TaskStatus.QUEUED
    assert [e.type for e in events] == [REQUEUED]

    # Within the grace of the last re-enqueue: nothing again.
    again = run(_sweep(url, queue))
    assert again.requeued == [] and len(_messages(redis_prefix)) == 1
    assert run(_state(url, fresh))[1] == []


def test_a_requeued_tasks_delayed_message_is_resent_only_a_grace_after_its_retry_was_due(
    url: str, queue: TaskQueue, redis_prefix: str
) -> None:
    """A worker re-queued these after an infrastructure failure, their message sent with a delay
    (``retry_at``): one not yet due, one due 10 s ago (within the 30 s grace), one due long ago."""
    retrying = waiting(WaitingKind.RETRYING, "attempt 1 of 3 ended", in_seconds(-120))
    fields = {"created_at": in_seconds(-900), "attempts": 1, "waiting": retrying}
    due = {when: run(_add_task(url, retry_at=in_seconds(when), **fields)) for when in (60, -10, -120)}

    report = run(_sweep(url, queue))
    assert report.requeued == [due[-120]], report
    assert [m["args"] for m in _messages(redis_prefix)] == [[str(due[-120])]]
    for when in (60, -10):
        assert run(_state(url, due[when]))[1] == []


def test_broker_failure_is_retried_next_sweep(
    url: str, queue: TaskQueue, tmp_path: Path, redis_prefix: str
) -> None:
    # As the API leaves a task whose enqueue failed.
    outage = waiting(WaitingKind.BROKER_UNAVAILABLE, "the task queue did not take it", in_seconds(-120))
    task_id = run(_add_task(url, created_at=in_seconds(-120), waiting=outage))
    down = TaskQueue.from_settings(Settings(data_dir=tmp_path / "d2", redis_url="redis://127.0.0.1:1/0"))
    down.timeout_s = 3
    try:
        assert run(_sweep(url, down)).requeued == []
    finally:
        down.close()
    assert run(_state(url, task_id))[1] == []  # no event: not backed off
    assert run(_sweep(url, queue)).requeued == [task_id]
    assert [m["args"] for m in _messages(redis_prefix)] == [[str(task_id)]]
    # The broker took it: the task waits in the queue again, and says so.
    task, events = run(_state(url, task_id))
    assert task.waiting is not None and task.waiting["kind"] == "queued"
    assert [(e.type, e.payload.get("waiting")) for e in events] == [
        (REQUEUED, None),
        ("task.waiting", task.waiting),
    ]


def test_stale_task_on_its_last_attempt_fails_worker_lost(
    url: str, queue: TaskQueue, redis_prefix: str
) -> None:
    retrying = waiting(WaitingKind.MODEL_UNAVAILABLE, "the model server failed", in_seconds(-300))
    task_id = run(_add_task(url, status=TaskStatus.RUNNING, worker_id="host:1/a", attempts=LAST,
                            claimed_at=in_seconds(-600), heartbeat_at=in_seconds(-300), waiting=retrying))  # fmt: skip
    report = run(_sweep(url, queue))
    assert report.failed == [task_id] and report.requeued == []
    task, events = run(_state(url, task_id))
    assert (task.status, task.reason, task.waiting) == (TaskStatus.FAILED, "worker_lost", None)
    assert task.finished_at is not None
    [event] = events
    assert event.type == "task.status"
    assert event.payload["from"] == "running" and event.payload["to"] == "failed"
    assert event.payload["reason"] == "worker_lost"
    assert _messages(redis_prefix) == []


def test_stale_task_with_attempts_left_is_requeued(url: str, queue: TaskQueue, redis_prefix: str) -> None:
    task_id = run(_add_task(url, status=TaskStatus.WAITING_FOR_USER, worker_id="host:1/a", attempts=1,
                            claimed_at=in_seconds(-600), heartbeat_at=in_seconds(-300)))  # fmt: skip
    assert run(_sweep(url, queue)).requeued == [task_id]
    task, events = run(_state(url, task_id))
    assert task.status == TaskStatus.WAITING_FOR_USER  # the worker's claim rule re-claims it
    assert [e.type for e in events] == [REQUEUED]
    assert [m["args"] for m in _messages(redis_prefix)] == [[str(task_id)]]
    assert run(_sweep(url, queue)).requeued == []  # backed off


def test_live_tasks_are_untouched(url: str, queue: TaskQueue, redis_prefix: str) -> None:
    ids = [
        run(_add_task(url, status=TaskStatus.RUNNING, worker_id="host:1/a", attempts=2,
                      created_at=in_seconds(-900), claimed_at=in_seconds(-600), heartbeat_at=in_seconds(-5))),
        run(_add_task(url, status=TaskStatus.LEASING, worker_id="host:1/b", attempts=1,
                      created_at=in_seconds(-900), claimed_at=in_seconds(-5))),
        run(_add_task(url, status=TaskStatus.SUCCEEDED, attempts=1, created_at=in_seconds(-900),
                      heartbeat_at=in_seconds(-900))),
    ]  # fmt: skip
    report = run(_sweep(url, queue))
    assert report.requeued == [] and report.failed == []
    assert _messages(redis_prefix) == []
    for task_id in ids:
        assert run(_state(url, task_id))[1] == []


def test_a_heartbeat_after_the_read_wins(url: str, queue: TaskQueue) -> None:
    """The fail-over is fenced on the heartbeat it read: a worker that heartbeats meanwhile keeps its task."""
    task_id = run(_add_task(url, status=TaskStatus.RUNNING, worker_id="host:1/a", attempts=2,
                            claimed_at=in_seconds(-600), heartbeat_at=in_seconds(-300)))  # fmt: skip

    async def race() -> bool:
        async with open_sessions(url) as sessions:
            db = Database(sessions)
            sweeper = TaskSweeper(db, queue, stale_after_s=STALE_S)
            async with db.transaction() as session:
                row = (
                    await session.execute(
                        select(
                            Task.id,
                            Task.tenant_id,
                            Task.status,
                            Task.worker_id,
                            Task.heartbeat_at,
                            Task.attempts,
                        ).where(Task.id == task_id)
                    )
                ).one()
            async with db.transaction(write=True) as session:
                task = await session.get_one(Task, task_id)
                task.heartbeat_at = in_seconds(0)
            return await sweeper._fail_lost(row, in_seconds(0))

    assert run(race()) is False
    task, events = run(_state(url, task_id))
    assert task.status == TaskStatus.RUNNING and events == []


async def _age_requeues(url: str, task_id: uuid.UUID, seconds: float) -> None:
    """Date the task's ``task.requeued`` events ``seconds`` ago: the sweeper's clock is the events'."""
    async with open_sessions(url) as sessions, sessions() as session, session.begin():
        await session.execute(
            update(Event)
            .where(Event.task_id == task_id, Event.type == REQUEUED)
            .values(created_at=in_seconds(-seconds))
        )


def _drop_messages(prefix: str) -> None:
    """The broker loses every message (as a Redis restarted without persistence does)."""
    r = redis.Redis.from_url(REDIS_URL)
    try:
        r.delete(f"{prefix}{TASKS_QUEUE}")
    finally:
        r.close()


def test_repeated_sweeps_leave_one_message_for_a_task(url: str, queue: TaskQueue, redis_prefix: str) -> None:
    """The message is lost once: however many sweeps run, and however late, one message waits for it."""
    task_id = run(_add_task(url, created_at=in_seconds(-7200)))
    assert run(_sweep(url, queue)).requeued == [task_id]
    for _ in range(3):
        run(_age_requeues(url, task_id, 7200))  # past any back-off: only the broker check holds it
        report = run(_sweep(url, queue))
        assert report.requeued == [] and report.waiting == [task_id]
    assert [m["args"] for m in _messages(redis_prefix)] == [[str(task_id)]]
    assert [e.type for e in run(_state(url, task_id))[1]] == [REQUEUED]

    _drop_messages(redis_prefix)  # lost again: re-sent once more, and again only once
    assert run(_sweep(url, queue)).requeued == [task_id]
    assert run(_sweep(url, queue)).requeued == []
    assert [m["args"] for m in _messages(redis_prefix)] == [[str(task_id)]]


def test_resends_back_off_doubling(url: str, queue: TaskQueue, redis_prefix: str) -> None:
    """Where the broker cannot tell (its message taken, or a SQLite broker), the horizon doubles per re-send."""
    task_id = run(_add_task(url, created_at=in_seconds(-7200)))
    sweep = lambda: run(_sweep(url, queue, queued_grace_s=30, max_horizon_s=200)).requeued  # noqa: E731
    assert sweep() == [task_id]
    for resends, horizon in [(1, 60), (2, 120), (3, 200), (4, 200)]:
        _drop_messages(redis_prefix)
        run(_age_requeues(url, task_id, horizon - 10))
        assert sweep() == [], (resends, horizon)
        run(_age_requeues(url, task_id, horizon + 10))
        assert sweep() == [task_id], (resends, horizon)
    assert [e.type for e in run(_state(url, task_id))[1]] == [REQUEUED] * 5


async def _leased(url: str, store: LeaseStore, task_id: uuid.UUID, holder: str, tag: str) -> LeaseGrant:
    """A device of this test's own (profile ``tag``) leased to ``holder`` for ``task_id``."""
    async with open_sessions(url) as sessions, sessions() as session, session.begin():
        task = await session.get_one(Task, task_id)
        await make_device(session, profile={"tag": tag, "holder": holder})
    grant = await store.acquire(holder=holder, tenant_id=task.tenant_id, task_id=task_id,
                                profile={"tag": tag, "holder": holder}, ttl_s=600)  # fmt: skip
    assert grant is not None
    return grant


def test_a_lost_workers_lease_is_ended_for_a_reset_and_a_live_ones_kept(url: str, queue: TaskQueue) -> None:
    """Found lost, a run's lease ends at once (not at its 600 s expiry) and the pool is woken; a
    live run's lease, and a lost run's whose heartbeat came in after the sweeper read it, stay."""
    tag = uuid.uuid4().hex
    lost = run(_add_task(url, status=TaskStatus.RUNNING, worker_id="host:1/lost", attempts=1,
                         claimed_at=in_seconds(-600), heartbeat_at=in_seconds(-300)))  # fmt: skip
    live = run(_add_task(url, status=TaskStatus.RUNNING, worker_id="host:1/live", attempts=1,
                         claimed_at=in_seconds(-600), heartbeat_at=in_seconds(-5)))  # fmt: skip
    last = run(_add_task(url, status=TaskStatus.RUNNING, worker_id="host:1/last", attempts=LAST,
                         claimed_at=in_seconds(-600), heartbeat_at=in_seconds(-300)))  # fmt: skip

    async def body() -> None:
        engine = make_engine(url)
        store = LeaseStore.for_engine(engine, signal=LocalSignal())
        try:
            grants = {task_id: await _leased(url, store, task_id, holder, tag)
                      for task_id, holder in ((lost, "host:1/lost"), (live, "host:1/live"), (last, "host:1/last"))}  # fmt: skip
            woken = await store.signal.arm(RELEASED)
            async with open_sessions(url) as sessions:
                sweeper = TaskSweeper(Database(sessions), queue, stale_after_s=STALE_S, signal=store.signal)
                report = await sweeper.sweep()
            assert report.requeued == [lost] and report.failed == [last], report
            assert woken.is_set()
            for task_id, reason in ((lost, "worker_lost"), (last, "worker_lost"), (live, None)):
                lease = await store.lease(grants[task_id].lease_id)
                device = await store.device(grants[task_id].device_id)
                assert lease is not None and device is not None
                assert lease.release_reason == reason, (task_id, lease)
                assert device.state == (DeviceState.LEASED if reason is None else DeviceState.RESETTING)
            # The lost run, were it somehow alive, learns it at its next lease heartbeat.
            assert not await store.heartbeat(grants[lost].lease_id, "host:1/lost", ttl_s=600)
            assert await store.heartbeat(grants[live].lease_id, "host:1/live", ttl_s=600)

            # A lost run whose heartbeat lands after the sweeper read its row keeps its lease.
            late = await _add_task(url, status=TaskStatus.RUNNING, worker_id="host:1/late", attempts=1,
                                   claimed_at=in_seconds(-600), heartbeat_at=in_seconds(-300))  # fmt: skip
            grant = await _leased(url, store, late, "host:1/late", tag)
            async with open_sessions(url) as sessions:
                db = Database(sessions)
                async with db.transaction() as session:
                    row = (await session.execute(select(
                        Task.id, Task.status, Task.worker_id, Task.heartbeat_at).where(Task.id == late))).one()  # fmt: skip
                async with db.transaction(write=True) as session:
                    (await session.get_one(Task, late)).heartbeat_at = in_seconds(0)
                await TaskSweeper(db, queue, stale_after_s=STALE_S)._end_leases(row, in_seconds(0))
            assert (await store.lease(grant.lease_id)).released_at is None  # type: ignore[union-attr]
        finally:
            await store.close()
            await engine.dispose()

    run(body())


async def _quota_fleet(url: str) -> tuple[uuid.UUID, uuid.UUID, uuid.UUID]:
    """A tenant at max_concurrent_tasks = 1: a running task, and two older ones waiting for the quota."""
    async with open_sessions(url) as sessions, sessions() as session, session.begin():
        tenant = await make_tenant(session, limits={"max_concurrent_tasks": 1})
        running = await make_task(session, tenant, status=TaskStatus.RUNNING, worker_id="w-1",
                                  claimed_at=in_seconds(-5), heartbeat_at=in_seconds(0))  # fmt: skip
        held = waiting(
            WaitingKind.QUOTA, "max_concurrent_tasks: the tenant runs 1 tasks of 1", in_seconds(-100)
        )
        first = await make_task(session, tenant, created_at=in_seconds(-120), waiting=held)
        second = await make_task(session, tenant, created_at=in_seconds(-110), waiting=held)
        return running.id, first.id, second.id


def test_a_task_waiting_for_its_quota_is_sent_again_only_when_its_tenant_has_room(
    url: str, queue: TaskQueue, redis_prefix: str
) -> None:
    running, first, second = run(_quota_fleet(url))
    report = run(_sweep(url, queue))
    assert report.requeued == [] and _messages(redis_prefix) == []  # no lost message: a wait for room
    assert run(_state(url, first))[0].waiting["kind"] == WaitingKind.QUOTA

    async def end_running() -> None:
        async with open_sessions(url) as sessions, sessions() as session, session.begin():
            await session.execute(update(Task).where(Task.id == running).values(status=TaskStatus.SUCCEEDED))

    run(end_running())
    report = run(_sweep(url, queue))
    assert report.requeued == [first]  # room for one: the oldest
    [message] = _messages(redis_prefix)
    assert message["args"] == [str(first)]
    task, events = run(_state(url, first))
    assert task.status == TaskStatus.QUEUED and task.waiting["kind"] == WaitingKind.QUEUED
    assert [e.type for e in events] == ["task.waiting", REQUEUED]
    assert run(_state(url, second))[0].waiting["kind"] == WaitingKind.QUOTA
    # The room is the first's until a worker claims it: the next sweep sends nothing more.
    assert run(_sweep(url, queue)).requeued == [] and len(_messages(redis_prefix)) == 1
