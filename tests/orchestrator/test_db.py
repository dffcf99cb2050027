"""Rows round-trip on both databases, and the constraints the control plane relies on hold."""

from __future__ import annotations

import datetime as dt
import sqlite3
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select, text, update
from sqlalchemy.exc import IntegrityError, StatementError

from orchestrator.db import (
    BEGIN_IMMEDIATE,
    Device,
    DeviceSession,
    DeviceState,
    Event,
    Lease,
    SessionState,
    Step,
    Task,
    TaskStatus,
    UserRole,
    WebhookDelivery,
    WebhookStatus,
    make_engine,
    utcnow,
)
from orchestrator.db.database import Database
from orchestrator.db.redaction import text_redaction_on
from tests.aio import run
from tests.databases import migrate_to_head, open_sessions
from tests.orchestrator.factories import (
    in_seconds,
    make_api_key,
    make_device,
    make_task,
    make_tenant,
    make_user,
)


def test_rows_round_trip(db_url: str) -> None:
    async def body() -> None:
        async with open_sessions(db_url) as sessions:
            async with sessions.begin() as s:
                user = await make_user(s, role=UserRole.ADMIN)
                key = await make_api_key(s, user)
                device = await make_device(s, labels={"zone": "a"})
                task = await make_task(
                    s, tenant_id=user.tenant_id, created_by=key.id, idempotency_key="k1",
                    metadata_={"ticket": 42, "tags": ["x"]}, device_profile={"android": 13},
                    device_id=device.id,
                )  # fmt: skip
                s.add(Step(task_id=task.id, index=0, action={"action": "Tap", "element": [500, 500]},
                           timings={"model_s": 1.25}, prompt_tokens=900))  # fmt: skip
                first = Event(
                    tenant_id=user.tenant_id, task_id=task.id, type="task.status", payload={"to": "queued"}
                )
                second = Event(
                    tenant_id=user.tenant_id, task_id=task.id, type="task.step", payload={"index": 0}
                )
                s.add_all([first, second])
                await s.flush()
                s.add(WebhookDelivery(event_id=first.id, task_id=task.id, url="https://example.test/hook"))
                session_row = DeviceSession(tenant_id=user.tenant_id, user_id=user.id, device_id=device.id)
                s.add(session_row)
                await s.flush()
                s.add(Lease(device_id=device.id, tenant_id=user.tenant_id, holder="worker-1", task_id=task.id,
                            expires_at=in_seconds(60)))  # fmt: skip
            task_id, device_id = task.id, device.id

            async with sessions() as s:  # a new session: everything below comes from the database
                task = await s.get(Task, task_id)
                assert task is not None
                assert isinstance(task.id, uuid.UUID)
                assert task.status is TaskStatus.QUEUED and isinstance(task.status, TaskStatus)
                assert task.metadata_ == {"ticket": 42, "tags": ["x"]}
                assert task.device_profile == {"android": 13}
                assert (task.max_steps, task.attempts, task.result) == (50, 0, None)
                assert task.created_at.tzinfo is dt.UTC
                assert abs(utcnow() - task.created_at) < dt.timedelta(minutes=1)
                step = (await s.scalars(select(Step).where(Step.task_id == task_id))).one()
                assert step.action == {"action": "Tap", "element": [500, 500]}
                assert step.timings == {"model_s": 1.25}
                events = (
                    await s.scalars(select(Event).where(Event.task_id == task_id).order_by(Event.id))
                ).all()
                assert [e.type for e in events] == ["task.status", "task.step"]
                assert events[0].id < events[1].id and isinstance(events[0].id, int)
                delivery = (
                    await s.scalars(select(WebhookDelivery).where(WebhookDelivery.task_id == task_id))
                ).one()
                assert delivery.status is WebhookStatus.PENDING and delivery.next_attempt_at is not None
                lease = (await s.scalars(select(Lease).where(Lease.device_id == device_id))).one()
                assert lease.expires_at.tzinfo is dt.UTC and lease.expires_at > lease.acquired_at
                session_row = (
                    await s.scalars(select(DeviceSession).where(DeviceSession.device_id == device_id))
                ).one()
                assert session_row.state is SessionState.ACTIVE

    run(body())


def test_times_are_stored_in_utc(db_url: str) -> None:
    async def body() -> None:
        async with open_sessions(db_url) as sessions:
            plus_two = dt.timezone(dt.timedelta(hours=2))
            async with sessions.begin() as s:
                device = await make_device(
                    s, health_checked_at=dt.datetime(2026, 1, 1, 12, 0, tzinfo=plus_two)
                )
            async with sessions() as s:
                loaded = await s.get(Device, device.id)
                assert loaded is not None
                assert loaded.health_checked_at == dt.datetime(2026, 1, 1, 10, 0, tzinfo=dt.UTC)
                assert loaded.health_checked_at.tzinfo is dt.UTC
            async with sessions.begin() as s:
                with pytest.raises(StatementError, match="naive datetime"):
                    await make_device(s, health_checked_at=dt.datetime(2026, 1, 1, 12, 0))

    run(body())


def test_idempotency_key_is_unique_per_tenant(db_url: str) -> None:
    async def body() -> None:
        async with open_sessions(db_url) as sessions:
            async with sessions.begin() as s:
                tenant, other = await make_tenant(s), await make_tenant(s)
                await make_task(s, tenant, idempotency_key="order-1")
                await make_task(s, other, idempotency_key="order-1")  # another tenant: fine
                await make_task(s, tenant)  # no key: any number of them
                await make_task(s, tenant)
            async with sessions.begin() as s:
                with pytest.raises(IntegrityError):
                    await make_task(s, tenant, idempotency_key="order-1")

    run(body())


def test_step_index_is_unique_per_task(db_url: str) -> None:
    async def body() -> None:
        async with open_sessions(db_url) as sessions:
            async with sessions.begin() as s:
                task, other = await make_task(s), await make_task(s)
                s.add_all([Step(task_id=task.id, index=0), Step(task_id=other.id, index=0)])
            async with sessions.begin() as s:
                s.add(Step(task_id=task.id, index=0))
                with pytest.raises(IntegrityError):
                    await s.flush()

    run(body())


def test_one_open_lease_per_device(db_url: str) -> None:
    async def body() -> None:
        async with open_sessions(db_url) as sessions:
            async with sessions.begin() as s:
                device = await make_device(s)
                s.add(Lease(device_id=device.id, holder="a", expires_at=in_seconds(60), released_at=utcnow()))
                s.add(Lease(device_id=device.id, holder="b", expires_at=in_seconds(60)))  # released one: fine
            async with sessions.begin() as s:
                s.add(Lease(device_id=device.id, holder="c", expires_at=in_seconds(60)))
                with pytest.raises(IntegrityError):
                    await s.flush()

    run(body())


def test_states_outside_the_enum_are_refused(db_url: str) -> None:
    async def body() -> None:
        async with open_sessions(db_url) as sessions:
            async with sessions.begin() as s:
                device = await make_device(s)
            set_state = update(Device).where(Device.id == device.id)
            async with sessions.begin() as s:
                with pytest.raises(StatementError, match="not among the defined enum values"):
                    await s.execute(set_state.values(state="borrowed"))  # refused before it is sent
            async with sessions.begin() as s:
                # Plain SQL, as the lease statement is written: the CHECK constraint still holds.
                with pytest.raises(IntegrityError):
                    await s.execute(text("UPDATE devices SET state = 'borrowed' WHERE serial = :serial"),
                                    {"serial": device.serial})  # fmt: skip
            async with sessions.begin() as s:
                await s.execute(set_state.values(state=DeviceState.LEASED))
            async with sessions() as s:
                assert (
                    await s.scalar(select(Device.state).where(Device.id == device.id))
                ) is DeviceState.LEASED

    run(body())


def test_foreign_keys_are_enforced(db_url: str) -> None:
    async def body() -> None:
        async with open_sessions(db_url) as sessions, sessions.begin() as s:
            s.add(Task(tenant_id=uuid.uuid4(), instruction="no such tenant"))
            with pytest.raises(IntegrityError):
                await s.flush()

    run(body())


PRAGMAS = ("journal_mode", "busy_timeout", "foreign_keys")


def test_sqlite_connection_settings(tmp_path: Path) -> None:
    """WAL, busy timeout and foreign keys on every connection; the database's folder is created."""
    path = tmp_path / "new" / "folder" / "pf.db"
    url = f"sqlite+aiosqlite:///{path}"

    async def body() -> tuple:
        engine = make_engine(url)
        try:
            async with engine.connect() as conn:
                return tuple([(await conn.exec_driver_sql(f"PRAGMA {name}")).scalar() for name in PRAGMAS])
        finally:
            await engine.dispose()

    assert run(body()) == ("wal", 5000, 1)
    assert path.is_file()


def test_sqlite_begin_immediate_takes_the_write_lock(tmp_path: Path) -> None:
    path = tmp_path / "pf.db"
    url = f"sqlite+aiosqlite:///{path}"
    migrate_to_head(url)

    def writer_can_start() -> bool:
        other = sqlite3.connect(path, timeout=0.05, isolation_level=None)
        try:
            other.execute("BEGIN IMMEDIATE")
            other.execute("ROLLBACK")
            return True
        except sqlite3.OperationalError as exc:
            assert "locked" in str(exc)
            return False
        finally:
            other.close()

    async def holding(immediate: bool) -> bool:
        engine = make_engine(url)
        try:
            async with engine.connect() as conn:
                conn = await conn.execution_options(**{BEGIN_IMMEDIATE: immediate})
                async with conn.begin():
                    await conn.execute(text("SELECT count(*) FROM devices"))
                    return writer_can_start()
        finally:
            await engine.dispose()

    assert run(holding(immediate=False)) is True  # a deferred BEGIN that only read holds no write lock
    assert run(holding(immediate=True)) is False


def test_a_tenant_opts_in_to_text_redaction_by_name_or_star(db_url: str) -> None:
    """``text_redaction_on``: the one rule the worker (a task's masking and recording) and the API
    (a session's recording) read."""

    async def body() -> None:
        async with open_sessions(db_url) as sessions:
            async with sessions.begin() as s:
                tenant = await make_tenant(s)
            db = Database(sessions)
            assert await text_redaction_on(db, tenant.id, []) is False
            assert await text_redaction_on(db, tenant.id, ["someone-else"]) is False
            assert await text_redaction_on(db, tenant.id, ["someone-else", tenant.name]) is True
            assert await text_redaction_on(db, uuid.uuid4(), ["*"]) is True  # "*": no name needed

    run(body())
