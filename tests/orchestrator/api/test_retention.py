"""Encryption at rest, retention, and a tenant's export and deletion (docs/security.md, "Encryption at
rest and retention"), over the real API, PostgreSQL and the real reaper and pool code.

Screenshots are written by ``insert_step`` as the worker writes them; the pool's side of a tenant's
deletion (removing its personal phones' data) is the pool manager's own ``purge_deleted`` on a virtual
phone provider that keeps its personal data where the API's ``personal_phones.data_dir`` is.
"""

from __future__ import annotations

import datetime as dt
import io
import json
import uuid
import zipfile
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from device_pool.pool import LeaseStore
from device_pool.pool.personal_keeper import PersonalPhoneKeeper
from device_pool.providers.sim import SimProvider, SimProviderConfig
from orchestrator.db import (
    Base,
    DeviceSession,
    DeviceState,
    Event,
    Lease,
    PersonalPhone,
    Schedule,
    SessionState,
    Step,
    Task,
    TaskStatus,
    Tenant,
    UserRole,
    WebhookDelivery,
    WebhookSubscription,
    make_engine,
    make_sessionmaker,
    utcnow,
)  # fmt: skip
from orchestrator.db.database import Database
from orchestrator.db.steps import insert_step
from orchestrator.encryption import screenshot_cipher
from orchestrator.live.recorder import recording_file
from orchestrator.services.personal_phones import delete_phones_of
from orchestrator.services.retention import RetentionReaper
from tests.aio import run
from tests.databases import open_sessions
from tests.orchestrator.api.conftest import Api, Caller, StartApi
from tests.orchestrator.api.test_steps import JPEG
from tests.orchestrator.factories import make_device, make_task

KEY = "a storage key for this test"


def _days_ago(days: float) -> dt.datetime:
    return utcnow() - dt.timedelta(days=days)


def add_task(api: Api, tenant_id: uuid.UUID, *, shots: int = 2, **fields: Any) -> uuid.UUID:
    """A task with ``shots`` steps whose screenshots are written as the worker writes them, a
    ``task.status`` event with a webhook delivery, and a released lease of a device."""

    async def insert() -> uuid.UUID:
        async with open_sessions(api.db_url) as sessions, sessions() as session, session.begin():
            tenant = await session.get_one(Tenant, tenant_id)
            task = await make_task(session, tenant, **{"status": TaskStatus.SUCCEEDED, **fields})
            for i in range(shots):
                values = {"action_text": f"step {i}", "result": "ok", "timings": {}}
                await insert_step(
                    session, task.id, values, jpeg=JPEG + bytes([i]), data_dir=api.settings.data_dir,
                    cipher=screenshot_cipher(api.settings),
                )  # fmt: skip
            created = fields.get("finished_at") or fields.get("created_at") or utcnow()  # its last event
            event = Event(
                tenant_id=tenant_id, task_id=task.id, type="task.status", payload={}, created_at=created
            )
            session.add(event)
            await session.flush()
            session.add(WebhookDelivery(event_id=event.id, task_id=task.id, url="https://example.com/h"))
            device = await make_device(session, state=DeviceState.RETIRED)  # never leased by another test
            session.add(Lease(device_id=device.id, tenant_id=tenant_id, holder="w", task_id=task.id,
                              expires_at=created, released_at=created))  # fmt: skip
            return task.id

    return run(insert())


def shot_file(api: Api, task_id: uuid.UUID, index: int = 0) -> Path:
    return api.settings.data_dir / "tasks" / str(task_id) / f"step-{index:03d}.jpg"


def test_screenshots_are_stored_encrypted_and_served_decrypted(
    start_api: StartApi, migrated_pg_url: str
) -> None:
    api = start_api(migrated_pg_url, storage={"encryption_key": KEY})
    me = api.caller()
    phone = me.http.post("/api/v1/personal-phones", json={"name": "P"}).json()
    task_id = add_task(api, me.tenant_id, personal_phone_id=uuid.UUID(phone["id"]))

    stored = shot_file(api, task_id).read_bytes()
    assert not stored.startswith(b"\xff\xd8") and not stored.startswith(b"\x89PNG")  # no JPEG, no PNG
    assert JPEG[4:40] not in stored  # not the image's bytes, only sealed

    served = me.http.get(f"/api/v1/tasks/{task_id}/steps/0/screenshot")
    assert served.status_code == 200 and served.headers["content-type"] == "image/jpeg"
    assert served.content == JPEG + b"\x00"
    trajectory = zipfile.ZipFile(io.BytesIO(me.http.get(f"/api/v1/tasks/{task_id}/trajectory").content))
    assert trajectory.read("screenshots/1.jpg") == JPEG + b"\x01"
    # The phone's thumbnail: the latest screenshot of a task on it, decrypted too.
    thumb = me.http.get(f"/api/v1/personal-phones/{phone['id']}/thumbnail")
    assert thumb.status_code == 200 and thumb.content == JPEG + b"\x01"
    # Another tenant sees none of it.
    other = api.caller()
    assert other.http.get(f"/api/v1/personal-phones/{phone['id']}/thumbnail").status_code == 404
    assert other.http.get(f"/api/v1/tasks/{task_id}/steps/0/screenshot").status_code == 404

    # A deployment without the key (or with another) cannot read them: a clear 409, not garbage.
    keyless = start_api(migrated_pg_url)
    me_there = keyless.client(me.key)
    refused = me_there.get(f"/api/v1/tasks/{task_id}/steps/0/screenshot")
    assert refused.status_code == 409 and refused.json()["error"] == "stored_file_unreadable"
    assert "storage.encryption_key" in refused.json()["message"]


def test_a_phone_without_screenshots_has_no_thumbnail(api: Api) -> None:
    me = api.caller()
    phone = me.http.post("/api/v1/personal-phones", json={"name": "P"}).json()
    r = me.http.get(f"/api/v1/personal-phones/{phone['id']}/thumbnail")
    assert r.status_code == 404 and r.json()["error"] == "screenshot_not_found"


def _exists(api: Api, model: Any, **where: Any) -> bool:
    async def fetch() -> bool:
        async with open_sessions(api.db_url) as sessions, sessions() as session:
            query = select(model).where(
                *(
                    getattr(model, k).is_(None) if v is None else getattr(model, k) == v
                    for k, v in where.items()
                )
            )
            return (await session.scalar(query.limit(1))) is not None

    return run(fetch())


def test_retention_removes_old_data_and_nothing_else(any_db_api: Api) -> None:
    api = any_db_api  # PostgreSQL, then SQLite (phonefleet up)
    a, b = api.caller(role=UserRole.ADMIN), api.caller()
    assert a.http.patch("/api/v1/tenant", json={"retention_days": 7}).json()["effective_retention_days"] == 7
    old = add_task(api, a.tenant_id, created_at=_days_ago(10), finished_at=_days_ago(9))
    running = add_task(api, a.tenant_id, status=TaskStatus.RUNNING, created_at=_days_ago(10))
    recent = add_task(api, a.tenant_id, created_at=_days_ago(10), finished_at=_days_ago(6))
    others = add_task(api, b.tenant_id, created_at=_days_ago(30), finished_at=_days_ago(30))  # B keeps all
    # Recordings: a task's is in its folder; a session's goes with the session's age, its row stays.
    for task_id in (old, recent):
        recording_file(api.settings.data_dir, "task", task_id).write_bytes(b"mp4")
    old_session, recent_session = add_session(api, a.tenant_id, 9), add_session(api, a.tenant_id, 6)

    async def reap() -> Any:
        engine = make_engine(api.db_url)
        try:
            return await RetentionReaper(Database(make_sessionmaker(engine)), api.settings.data_dir,
                                         default_days=None).reap()  # fmt: skip
        finally:
            await engine.dispose()

    report = run(reap())
    assert report.tasks >= 1
    # The old finished task is gone with its steps, screenshots, events and deliveries…
    assert not _exists(api, Task, id=old) and not _exists(api, Step, task_id=old)
    assert not shot_file(api, old).parent.exists()
    assert not _exists(api, Event, task_id=old) and not _exists(api, WebhookDelivery, task_id=old)
    assert a.http.get(f"/api/v1/tasks/{old}").status_code == 404
    # …its lease stays in the pool's log, unlinked from it.
    assert _exists(api, Lease, tenant_id=a.tenant_id, task_id=None)
    # Nothing else: a task still running (its old event goes: events are kept by their own age), a
    # task that ended within the retention (its event too), and another tenant's old task.
    for kept in (running, recent):
        assert (
            _exists(api, Task, id=kept) and _exists(api, Step, task_id=kept) and shot_file(api, kept).exists()
        )
    assert not _exists(api, Event, task_id=running)
    assert _exists(api, Event, task_id=recent)
    assert (
        _exists(api, Task, id=others)
        and shot_file(api, others).exists()
        and _exists(api, Event, task_id=others)
    )
    assert b.http.get(f"/api/v1/tasks/{others}/steps/1/screenshot").content == JPEG + b"\x01"
    assert recording_file(api.settings.data_dir, "task", recent).exists()
    assert not recording_file(api.settings.data_dir, "session", old_session).exists()
    assert recording_file(api.settings.data_dir, "session", recent_session).exists()
    assert _exists(api, DeviceSession, id=old_session)


def add_session(api: Api, tenant_id: uuid.UUID, closed_days_ago: float) -> uuid.UUID:
    """A session that closed ``closed_days_ago`` days ago, with a recording file."""

    async def insert() -> uuid.UUID:
        async with open_sessions(api.db_url) as sessions, sessions() as session, session.begin():
            row = DeviceSession(tenant_id=tenant_id, state=SessionState.CLOSED, closed_at=_days_ago(closed_days_ago))
            session.add(row)
            await session.flush()
            return row.id

    session_id = run(insert())
    path = recording_file(api.settings.data_dir, "session", session_id)
    path.parent.mkdir(parents=True)
    path.write_bytes(b"mp4")
    return session_id


def test_a_tenant_retention_is_for_admins_and_never_longer_than_the_deployments(
    start_api: StartApi, migrated_pg_url: str
) -> None:
    api = start_api(migrated_pg_url, storage={"retention_days": 30})
    admin = api.caller(role=UserRole.ADMIN)
    member = api.caller(role=UserRole.MEMBER, tenant_id=admin.tenant_id)
    assert admin.http.get("/api/v1/tenant").json()["effective_retention_days"] == 30
    assert member.http.patch("/api/v1/tenant", json={"retention_days": 3}).status_code == 403
    longer = admin.http.patch("/api/v1/tenant", json={"retention_days": 31})
    assert longer.status_code == 422 and "storage.retention_days" in longer.json()["message"]
    shorter = admin.http.patch("/api/v1/tenant", json={"retention_days": 3}).json()
    assert (shorter["retention_days"], shorter["effective_retention_days"]) == (3, 3)
    assert admin.http.patch("/api/v1/tenant", json={"retention_days": 0}).status_code == 422


def _seed(api: Api, caller: Caller) -> dict[str, Any]:
    """A bit of everything a tenant has: a task with screenshots, a schedule, a subscription, a
    personal phone with data on disk."""
    task_id = add_task(api, caller.tenant_id)
    phone = caller.http.post("/api/v1/personal-phones", json={"name": "P"}).json()
    data = api.settings.personal_phones.data_dir / phone["id"]
    data.mkdir(parents=True)
    (data / "accounts.json").write_text('{"bank": "signed in"}')

    async def insert() -> None:
        async with open_sessions(api.db_url) as sessions, sessions() as session, session.begin():
            session.add(Schedule(tenant_id=caller.tenant_id, task={"instruction": "check mail"}, interval_s=3600,
                                 next_due_at=utcnow() + dt.timedelta(hours=1)))  # fmt: skip
            session.add(WebhookSubscription(tenant_id=caller.tenant_id, url="https://example.com/x",
                                            events=["task.status"], secret="s3cret-of-the-sub"))  # fmt: skip

    run(insert())
    return {"task": task_id, "phone": phone["id"], "data": data}


def test_a_tenant_exports_all_its_data_and_nothing_of_another(api: Api) -> None:
    a, b = api.caller(role=UserRole.ADMIN), api.caller(role=UserRole.ADMIN)
    mine, theirs = _seed(api, a), _seed(api, b)
    member = api.caller(tenant_id=a.tenant_id)
    assert member.http.get("/api/v1/tenant/export").status_code == 403

    r = a.http.get("/api/v1/tenant/export")
    assert r.status_code == 200 and r.headers["content-type"] == "application/zip"
    archive = zipfile.ZipFile(io.BytesIO(r.content))
    assert archive.testzip() is None
    head = json.loads(archive.read("tenant.json"))
    assert head["format"] == 1 and head["tenant"]["id"] == str(a.tenant_id)
    assert {k["id"] for k in head["api_keys"]} == {str(a.key_id), str(member.key_id)}
    assert all(set(k) >= {"prefix", "name"} and not set(k) & {"secret_hash", "key"} for k in head["api_keys"])

    def lines(name: str) -> list[dict[str, Any]]:
        return [json.loads(line) for line in archive.read(name).decode().splitlines()]

    assert [t["id"] for t in lines("tasks.jsonl")] == [str(mine["task"])]
    steps = lines("steps.jsonl")
    assert [(s["task_id"], s["index"]) for s in steps] == [(str(mine["task"]), 0), (str(mine["task"]), 1)]
    assert archive.read(steps[1]["screenshot"]) == JPEG + b"\x01"
    assert [p["id"] for p in lines("personal_phones.jsonl")] == [mine["phone"]]
    assert (
        len(lines("schedules.jsonl")) == 1
        and lines("schedules.jsonl")[0]["task"]["instruction"] == "check mail"
    )
    assert [e["task_id"] for e in lines("events.jsonl") if e["type"] == "task.status"] == [str(mine["task"])]
    assert [w["url"] for w in lines("webhook_subscriptions.jsonl")] == ["https://example.com/x"]
    assert b"s3cret-of-the-sub" not in r.content
    assert str(b.tenant_id).encode() not in r.content and str(theirs["task"]).encode() not in r.content


def _rows_of(api: Api, tenant_id: uuid.UUID) -> dict[str, set[Any]]:
    """Every row, in every table, that is the tenant's: with its tenant_id, or pointing (by a foreign
    key, at any depth) at such a row. Keyed by table, primary keys as tuples."""

    async def fetch() -> dict[str, set[Any]]:
        found: dict[str, set[Any]] = {}
        async with open_sessions(api.db_url) as sessions, sessions() as session:
            for _ in range(3):  # enough passes for the deepest chain (tenant → task → event → delivery)
                for table in Base.metadata.sorted_tables:
                    rows = (await session.execute(select(table))).all()
                    pk = [c.name for c in table.primary_key.columns]
                    for row in rows:
                        m = row._mapping
                        mine = (table.name == "tenants" and m["id"] == tenant_id) or m.get(
                            "tenant_id"
                        ) == tenant_id
                        for fk in table.foreign_keys:
                            value = m[fk.parent.name]
                            mine = mine or (
                                value is not None and (value,) in found.get(fk.column.table.name, set())
                            )
                        if mine:
                            found.setdefault(table.name, set()).add(tuple(m[c] for c in pk))
        return found

    return run(fetch())


def test_deleting_a_tenant_leaves_nothing_of_it_and_spares_another(
    start_api: StartApi, db_url: str, tmp_path: Path
) -> None:
    personal = tmp_path / "personal"  # PostgreSQL, then SQLite (phonefleet up)
    api = start_api(db_url, personal_phones={"data_dir": personal}, storage={"encryption_key": KEY})
    a, b = api.caller(role=UserRole.ADMIN), api.caller(role=UserRole.ADMIN)
    mine, theirs = _seed(api, a), _seed(api, b)
    busy = add_task(api, a.tenant_id, status=TaskStatus.RUNNING, shots=0)
    b_before = _rows_of(api, b.tenant_id)
    a_before = _rows_of(api, a.tenant_id)
    assert {
        "tasks",
        "steps",
        "events",
        "schedules",
        "personal_phones",
        "users",
        "api_keys",
    } <= a_before.keys()

    tenant = a.http.get("/api/v1/tenant").json()["name"]
    wrong = a.http.delete("/api/v1/tenant", params={"confirm": "not it"})
    assert wrong.status_code == 422 and wrong.json()["error"] == "confirmation_mismatch"
    running = a.http.delete("/api/v1/tenant", params={"confirm": tenant})
    assert running.status_code == 409 and running.json()["error"] == "tenant_busy"
    assert _exists(api, Task, id=mine["task"]) and shot_file(api, mine["task"]).exists()  # nothing went
    run(_set_status(api, busy, TaskStatus.CANCELLED))

    done = a.http.delete("/api/v1/tenant", params={"confirm": tenant})
    assert done.status_code == 202, done.text
    assert done.json()["personal_phones_pending"] == 1 and done.json()["finished"] is False
    assert a.http.get("/api/v1/tenant").status_code == 401  # every key of the tenant is revoked
    assert not shot_file(api, mine["task"]).parent.exists()

    # The pool removes the phone's data (its own code), then the reaper the tenant's last rows.
    async def pool_then_reaper() -> None:
        engine = make_engine(api.db_url)
        provider = SimProvider(SimProviderConfig(data_root=tmp_path / "phones", personal_root=personal))
        keeper = PersonalPhoneKeeper(
            LeaseStore.for_engine(engine), provider, idle_stop_s=600, op_timeout_s=30
        )
        try:
            assert await keeper.purge_deleted() >= 1
            await RetentionReaper(
                Database(make_sessionmaker(engine)), api.settings.data_dir, default_days=None
            ).reap()
        finally:
            await engine.dispose()

    run(pool_then_reaper())
    leftover = _rows_of(api, a.tenant_id)
    # The audit log alone keeps the tenant's id: the operator's record of who did what, the deletion
    # itself included (docs/security.md, "Audit log"); it names rows, it holds none of their data.
    audit = leftover.pop("audit_log", set())
    assert leftover == {}, leftover
    assert len(audit) == 1  # the tenant.delete entry (test_roles_audit.py reads it)
    for table, keys in a_before.items():  # not even rows that no longer point at it
        if table not in ("leases", "audit_log"):
            assert not keys & _all_keys(api, table), table
    assert not mine["data"].exists() and not (api.settings.data_dir / "tasks" / str(mine["task"])).exists()
    # The lease log keeps its rows, unlinked.
    assert _exists(api, Lease, holder="w", tenant_id=None, task_id=None)

    # The other tenant: every row, file and answer as before.
    assert _rows_of(api, b.tenant_id) == b_before
    assert theirs["data"].exists() and shot_file(api, theirs["task"]).exists()
    assert b.http.get(f"/api/v1/tasks/{theirs['task']}/steps/0/screenshot").content == JPEG + b"\x00"


async def _set_status(api: Api, task_id: uuid.UUID, status: TaskStatus) -> None:
    async with open_sessions(api.db_url) as sessions, sessions() as session, session.begin():
        await session.execute(update(Task).where(Task.id == task_id).values(status=status))


def _all_keys(api: Api, name: str) -> set[Any]:
    async def fetch() -> set[Any]:
        table = Base.metadata.tables[name]
        pk = list(table.primary_key.columns)
        async with open_sessions(api.db_url) as sessions, sessions() as session:
            return {tuple(row) for row in (await session.execute(select(*pk))).all()}

    return run(fetch())


def test_deleting_a_users_phones_leaves_the_other_users_phones(api: Api) -> None:
    """``delete_phones_of(…, user_id=)``: what a user's deletion calls (a tenant's: every user's)."""
    admin = api.caller(role=UserRole.ADMIN)
    other = api.caller(tenant_id=admin.tenant_id)
    mine = admin.http.post("/api/v1/personal-phones", json={"name": "mine"}).json()
    theirs = other.http.post("/api/v1/personal-phones", json={"name": "theirs"}).json()

    async def delete_the_admins() -> int:
        async with open_sessions(api.db_url) as sessions, sessions() as session, session.begin():
            owner = await session.scalar(
                select(PersonalPhone.user_id).where(PersonalPhone.id == uuid.UUID(mine["id"]))
            )
            return await delete_phones_of(session, admin.tenant_id, user_id=owner)

    assert run(delete_the_admins()) == 1
    assert admin.http.get(f"/api/v1/personal-phones/{mine['id']}").status_code == 404  # hidden at once
    assert other.http.get(f"/api/v1/personal-phones/{theirs['id']}").status_code == 200
    assert [
        p["id"] for p in admin.http.get("/api/v1/personal-phones", params={"scope": "tenant"}).json()["items"]
    ] == [theirs["id"]]
