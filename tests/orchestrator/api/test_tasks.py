"""Tasks over real HTTP: submit (one transaction + a Celery message in Redis), read, list, cancel."""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

import pytest
from sqlalchemy import select

from orchestrator.db import Event, Task, TaskStatus, Tenant, utcnow
from orchestrator.queue import RUN_TASK
from tests.aio import run
from tests.asgi import closed_port
from tests.databases import open_sessions
from tests.orchestrator.api.conftest import Api, StartApi
from tests.orchestrator.factories import make_task


def db_rows(db_url: str, query: Any) -> list[Any]:
    async def fetch() -> list[Any]:
        async with open_sessions(db_url) as sessions, sessions() as session:
            return list(await session.scalars(query))

    return run(fetch())


def add_tasks(db_url: str, tenant_id: uuid.UUID, specs: list[dict[str, Any]]) -> list[uuid.UUID]:
    """Insert tasks straight into the database (for states the API cannot create)."""

    async def insert() -> list[uuid.UUID]:
        async with open_sessions(db_url) as sessions, sessions() as session, session.begin():
            tenant = await session.get_one(Tenant, tenant_id)
            return [(await make_task(session, tenant, **spec)).id for spec in specs]

    return run(insert())


def test_submit_commits_task_and_event_and_enqueues_run_task(any_db_api: Api) -> None:
    caller = any_db_api.caller()
    body = {"instruction": "Open Settings and turn on Wi-Fi", "device_profile": {"android": 13},
            "webhook_url": "https://example.com/hook", "metadata": {"ticket": "OPS-1"}}  # fmt: skip
    r = caller.http.post("/api/v1/tasks", json=body)
    assert r.status_code == 202, r.text
    task = r.json()
    assert task["status"] == "queued"
    assert (task["max_steps"], task["timeout_s"], task["model"]) == (30, 600, None)
    assert task["metadata"] == {"ticket": "OPS-1"} and task["device_profile"] == {"android": 13}
    assert task["cancel_requested"] is False
    # A new task says why it waits, from the row the API just wrote (no read after the insert).
    assert task["waiting"] == {
        "kind": "queued", "message": "waiting for a worker to claim it", "since": task["created_at"],
    }  # fmt: skip
    task_id = uuid.UUID(task["id"])

    [row] = db_rows(any_db_api.db_url, select(Task).where(Task.id == task_id))
    assert row.status == TaskStatus.QUEUED and row.tenant_id == caller.tenant_id
    assert row.created_by == caller.key_id and row.webhook_url == "https://example.com/hook"
    events = db_rows(any_db_api.db_url, select(Event).where(Event.task_id == task_id))
    assert [(e.type, e.payload) for e in events] == [("task.created", {"status": "queued", "waiting": row.waiting})]
    assert row.waiting["kind"] == "queued"

    [message] = any_db_api.queued_messages()
    assert message["task"] == RUN_TASK
    assert message["args"] == [str(task_id)] and message["kwargs"] == {}

    got = caller.http.get(f"/api/v1/tasks/{task_id}")
    assert got.status_code == 200 and got.json() == task


def test_submit_without_redis_uses_the_sqlite_broker(start_api: StartApi, migrated_sqlite_url: str) -> None:
    """`phonefleet up` mode: no Redis URL, so Celery goes over kombu's SQLAlchemy transport on SQLite."""
    import sqlite3

    api = start_api(migrated_sqlite_url, redis_url=None)
    caller = api.caller()
    r = caller.http.post("/api/v1/tasks", json={"instruction": "go home"})
    assert r.status_code == 202, r.text
    broker = api.settings.data_dir / "broker.sqlite"
    with sqlite3.connect(broker) as conn:
        [(payload,)] = conn.execute("SELECT payload FROM kombu_message").fetchall()
    from tests.orchestrator.api.conftest import decode_celery_message

    message = decode_celery_message(payload.encode())
    assert message["task"] == RUN_TASK and message["args"] == [r.json()["id"]]


def test_broker_down_keeps_the_task_queued_and_answers_202(
    start_api: StartApi, migrated_pg_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    api = start_api(migrated_pg_url, redis_url=f"redis://127.0.0.1:{closed_port()}/0")
    caller = api.caller()
    with caplog.at_level(logging.WARNING, logger="orchestrator.services.task_creation"):
        r = caller.http.post("/api/v1/tasks", json={"instruction": "open the camera"})
    assert r.status_code == 202, r.text
    [row] = db_rows(api.db_url, select(Task).where(Task.id == uuid.UUID(r.json()["id"])))
    assert row.status == TaskStatus.QUEUED
    assert any("sweeper will re-enqueue" in rec.getMessage() for rec in caplog.records)
    # Why it is not moving, in the answer, on a later read and in a task.waiting event.
    assert r.json()["waiting"]["kind"] == "broker_unavailable"
    got = caller.http.get(f"/api/v1/tasks/{row.id}").json()
    assert got["waiting"] == r.json()["waiting"] and got["waiting"]["since"] >= got["created_at"]
    events = db_rows(api.db_url, select(Event).where(Event.task_id == row.id).order_by(Event.id))
    assert [e.type for e in events] == ["task.created", "task.waiting"]
    assert events[1].payload == {"status": "queued", "waiting": row.waiting}


def test_idempotency_key_returns_the_original_task(any_db_api: Api) -> None:
    caller = any_db_api.caller()
    body = {"instruction": "send the report", "metadata": {"n": 1}}
    headers = {"Idempotency-Key": f"key-{uuid.uuid4().hex}"}
    first = caller.http.post("/api/v1/tasks", json=body, headers=headers)
    again = caller.http.post("/api/v1/tasks", json=body, headers=headers)
    assert first.status_code == 202 and again.status_code == 200, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json() == first.json()
    rows = db_rows(any_db_api.db_url, select(Task).where(Task.tenant_id == caller.tenant_id))
    assert len(rows) == 1
    assert len(any_db_api.queued_messages()) == 1  # a replay enqueues nothing

    changed = caller.http.post("/api/v1/tasks", json={**body, "max_steps": 5}, headers=headers)
    assert changed.status_code == 409, changed.text
    assert changed.json()["error"] == "idempotency_conflict" and "max_steps" in changed.json()["message"]

    # Keys are per tenant: another tenant's identical key is a new task.
    other = any_db_api.caller()
    assert other.http.post("/api/v1/tasks", json=body, headers=headers).status_code == 202


def test_tasks_of_another_tenant_answer_404_on_every_endpoint(api: Api) -> None:
    owner, stranger = api.caller(), api.caller()
    task_id = owner.http.post("/api/v1/tasks", json={"instruction": "mine"}).json()["id"]
    for method, path in [
        ("GET", f"/api/v1/tasks/{task_id}"),
        ("POST", f"/api/v1/tasks/{task_id}/cancel"),
        ("GET", f"/api/v1/tasks/{task_id}/steps"),
        ("GET", f"/api/v1/tasks/{task_id}/steps/0/screenshot"),
    ]:
        r = stranger.http.request(method, path)
        assert r.status_code == 404, (method, path, r.text)
        assert r.json()["error"] == "task_not_found"
    assert stranger.http.get("/api/v1/tasks").json()["items"] == []
    assert owner.http.get(f"/api/v1/tasks/{task_id}").json()["status"] == "queued"  # untouched


def test_validation_errors_answer_422_with_a_readable_message(api: Api) -> None:
    caller = api.caller()
    cases = [
        ({"instruction": ""}, "instruction"),
        ({"instruction": "x" * 2001}, "instruction"),
        ({"instruction": "ok", "max_steps": 0}, "max_steps"),
        ({"instruction": "ok", "max_steps": 101}, "max_steps"),
        ({"instruction": "ok", "timeout_s": 5}, "timeout_s"),
        ({"instruction": "ok", "webhook_url": "ftp://example.com/x"}, "webhook_url"),
        ({"instruction": "ok", "metadata": {"blob": "x" * 17_000}}, "metadata"),
        ({"instruction": "ok", "metadata": [1, 2]}, "metadata"),
        ({"instruction": "ok", "unknown_field": 1}, "unknown_field"),
        ({}, "instruction"),
    ]
    for body, field in cases:
        r = caller.http.post("/api/v1/tasks", json=body)
        assert r.status_code == 422, (body, r.text)
        err = r.json()
        assert err["error"] == "validation_error" and field in err["message"], err
        assert "x" * 100 not in r.text  # the input is not echoed back
    r = caller.http.get("/api/v1/tasks", params={"limit": 500})
    assert r.status_code == 422 and "limit" in r.json()["message"]
    r = caller.http.get("/api/v1/tasks", params={"cursor": "not-a-cursor"})
    assert r.status_code == 422 and r.json()["error"] == "invalid_cursor"


def test_cursor_pagination_returns_every_task_once_newest_first(any_db_api: Api) -> None:
    caller = any_db_api.caller()
    base = utcnow()
    # Ties on created_at (three tasks per instant) exercise the id tie-breaker.
    specs = [{"created_at": base - dt.timedelta(seconds=i // 3), "instruction": f"t{i}"} for i in range(23)]
    specs += [{"created_at": base, "status": TaskStatus.SUCCEEDED, "instruction": "done"}]
    ids = set(add_tasks(any_db_api.db_url, caller.tenant_id, specs))
    any_db_api.caller()  # another tenant, with nothing of ours

    seen: list[dict[str, Any]] = []
    cursor = None
    for _ in range(10):
        params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        page = caller.http.get("/api/v1/tasks", params=params).json()
        seen += page["items"]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert len(seen) == len(ids) and {uuid.UUID(t["id"]) for t in seen} == ids
    keys = [(t["created_at"], t["id"]) for t in seen]
    assert keys == sorted(keys, reverse=True)

    done = caller.http.get("/api/v1/tasks", params={"status": "succeeded"}).json()
    assert [t["instruction"] for t in done["items"]] == ["done"] and done["next_cursor"] is None


def test_cancel_queued_task_ends_it_with_an_event(any_db_api: Api) -> None:
    caller = any_db_api.caller()
    task_id = caller.http.post("/api/v1/tasks", json={"instruction": "wait"}).json()["id"]
    r = caller.http.post(f"/api/v1/tasks/{task_id}/cancel")
    assert r.status_code == 200, r.text
    assert r.json()["status"] == "cancelled" and r.json()["finished_at"] is not None
    assert r.json()["waiting"] is None  # an ended task waits for nothing
    events = db_rows(
        any_db_api.db_url, select(Event).where(Event.task_id == uuid.UUID(task_id)).order_by(Event.id)
    )
    assert [e.type for e in events] == ["task.created", "task.status"]
    assert events[1].payload == {"from": "queued", "to": "cancelled", "reason": "cancelled", "waiting": None}

    again = caller.http.post(f"/api/v1/tasks/{task_id}/cancel")
    assert again.status_code == 409 and again.json()["error"] == "invalid_transition"


def test_cancel_running_task_records_a_request_for_the_worker(api: Api) -> None:
    caller = api.caller()
    [task_id] = add_tasks(api.db_url, caller.tenant_id, [{"status": TaskStatus.RUNNING}])
    for _ in range(2):  # asking twice records one request
        r = caller.http.post(f"/api/v1/tasks/{task_id}/cancel")
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "running" and r.json()["cancel_requested"] is True
    [row] = db_rows(api.db_url, select(Task).where(Task.id == task_id))
    assert "cancel_requested_at" in row.result
    events = db_rows(api.db_url, select(Event).where(Event.task_id == task_id))
    assert [(e.type, e.payload) for e in events] == [("task.cancel_requested", {"status": "running"})]


@pytest.mark.parametrize("status", ["succeeded", "failed", "timed_out"])
def test_cancel_finished_task_is_a_409(api: Api, status: str) -> None:
    caller = api.caller()
    [task_id] = add_tasks(api.db_url, caller.tenant_id, [{"status": TaskStatus(status)}])
    r = caller.http.post(f"/api/v1/tasks/{task_id}/cancel")
    assert r.status_code == 409, r.text
    assert r.json()["error"] == "invalid_transition" and status in r.json()["message"]


def test_rate_limit_answers_429_with_retry_after(start_api: StartApi, migrated_pg_url: str) -> None:
    api = start_api(migrated_pg_url, auth={"rate_limit_per_s": 0.5, "rate_limit_burst": 2})
    caller = api.caller()
    codes = [caller.http.post("/api/v1/tasks", json={"instruction": f"t{i}"}).status_code for i in range(3)]
    assert codes[:2] == [202, 202]
    r = caller.http.post("/api/v1/tasks", json={"instruction": "one more"})
    assert r.status_code == 429 and r.json()["error"] == "rate_limited"
    assert int(r.headers["Retry-After"]) >= 1
    assert api.caller().http.post("/api/v1/tasks", json={"instruction": "x"}).status_code == 202  # per tenant


def test_concurrent_submissions_with_one_key_create_one_task(any_db_api: Api) -> None:
    from concurrent.futures import ThreadPoolExecutor

    caller = any_db_api.caller()
    headers = {"Idempotency-Key": f"race-{uuid.uuid4().hex}"}

    def submit(_: int) -> tuple[int, str]:
        r = any_db_api.client(caller.key).post("/api/v1/tasks", json={"instruction": "once"}, headers=headers)
        return r.status_code, r.json().get("id", r.text)

    with ThreadPoolExecutor(6) as pool:
        results = list(pool.map(submit, range(6)))
    assert sorted(code for code, _ in results) == [200] * 5 + [202], results
    assert len({task_id for _, task_id in results}) == 1
    assert len(db_rows(any_db_api.db_url, select(Task).where(Task.tenant_id == caller.tenant_id))) == 1
