"""``/api/v1/schedules`` over real HTTP: create, read, list, change, delete, runs; bad input; limits."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest

from orchestrator.db import utcnow
from orchestrator.db.database import Database
from orchestrator.queue import TaskQueue
from orchestrator.services.scheduler import Scheduler
from orchestrator.settings import ScheduleSettings
from tests.aio import run
from tests.databases import migrate_to_head, open_sessions
from tests.orchestrator.api.conftest import Api, StartApi
from tests.orchestrator.schedules import set_schedule

TASK = {"instruction": "Open Settings and turn on Wi-Fi", "max_steps": 12, "metadata": {"ticket": "OPS-1"}}


def _create(caller: Any, **body: Any) -> Any:
    return caller.http.post("/api/v1/schedules", json={"task": TASK, **body})


def test_create_read_list_change_delete(any_db_api: Api) -> None:
    a = any_db_api.caller()
    created = _create(a, cron="0 9 * * 1-5", timezone="Europe/Paris", overlap="queue")
    assert created.status_code == 201, created.text
    body = created.json()
    assert body["task"]["instruction"] == TASK["instruction"] and body["task"]["max_steps"] == 12
    assert (body["cron"], body["timezone"], body["interval_s"]) == ("0 9 * * 1-5", "Europe/Paris", None)
    assert (body["catch_up"], body["overlap"], body["paused"], body["last_run"]) == ("skip", "queue", False, None)
    due = dt.datetime.fromisoformat(body["next_due_at"])
    assert due > utcnow() and due.astimezone(dt.UTC).hour in (7, 8), "09:00 in Paris is 07:00 or 08:00 UTC"
    sid = body["id"]
    assert a.http.get(f"/api/v1/schedules/{sid}").json() == body
    listed = a.http.get("/api/v1/schedules").json()
    assert [s["id"] for s in listed["items"]] == [sid] and listed["next_cursor"] is None

    paused = a.http.patch(f"/api/v1/schedules/{sid}", json={"paused": True})
    assert paused.status_code == 200 and paused.json()["paused"] is True
    changed = a.http.patch(f"/api/v1/schedules/{sid}", json={"interval_s": 3600, "task": {"instruction": "Go home"}})
    assert changed.status_code == 200, changed.text
    assert (changed.json()["cron"], changed.json()["interval_s"], changed.json()["timezone"]) == (None, 3600, "UTC")
    assert changed.json()["task"]["instruction"] == "Go home"
    resumed = a.http.patch(f"/api/v1/schedules/{sid}", json={"paused": False})
    next_due = dt.datetime.fromisoformat(resumed.json()["next_due_at"])
    assert dt.timedelta(seconds=3590) < next_due - utcnow() <= dt.timedelta(seconds=3600)

    assert a.http.delete(f"/api/v1/schedules/{sid}").status_code == 204
    gone = a.http.get(f"/api/v1/schedules/{sid}")
    assert (gone.status_code, gone.json()["error"]) == (404, "schedule_not_found")
    assert a.http.delete(f"/api/v1/schedules/{sid}").status_code == 404


def test_runs_are_ordinary_tasks_with_the_schedule_id(empty_db_url: str, start_api: StartApi) -> None:
    # A database of the test's own: a scheduler pass acts on every due schedule in it.
    migrate_to_head(empty_db_url)
    any_db_api = start_api(empty_db_url)
    a = any_db_api.caller()
    phone = a.http.post("/api/v1/personal-phones", json={"name": "A's phone"}).json()["id"]
    created = a.http.post("/api/v1/schedules", json={"task": {**TASK, "personal_phone_id": phone}, "interval_s": 60})
    assert created.status_code == 201, created.text
    sid = created.json()["id"]
    run(set_schedule(any_db_api.db_url, uuid.UUID(sid), next_due_at=utcnow()))

    async def tick() -> list:
        async with open_sessions(any_db_api.db_url) as sessions:
            queue = TaskQueue.from_settings(any_db_api.settings, key_prefix=any_db_api.redis_prefix)
            try:
                made = await Scheduler(Database(sessions), queue, ScheduleSettings()).tick()
            finally:
                queue.close()
            return made

    (task,) = run(tick())
    runs = a.http.get(f"/api/v1/schedules/{sid}/runs").json()["items"]
    assert [r["id"] for r in runs] == [str(task.id)]
    assert runs[0]["schedule_id"] == sid and runs[0]["status"] == "queued" and runs[0]["due_at"] is not None
    assert runs[0]["instruction"] == TASK["instruction"] and runs[0]["metadata"] == TASK["metadata"]
    one = a.http.get(f"/api/v1/tasks/{task.id}").json()
    assert one["schedule_id"] == sid and one["personal_phone_id"] == phone, "a run keeps the body's personal phone"
    schedule = a.http.get(f"/api/v1/schedules/{sid}").json()
    assert schedule["last_run"]["id"] == str(task.id) and schedule["last_run"]["status"] == "queued"
    assert any(m["args"] == [str(task.id)] for m in any_db_api.queued_messages()), "the run was enqueued"
    # Deleted, its runs stay as plain tasks.
    assert a.http.delete(f"/api/v1/schedules/{sid}").status_code == 204
    assert a.http.get(f"/api/v1/tasks/{task.id}").json()["schedule_id"] is None


def test_deleting_a_personal_phone_pauses_its_schedules_and_a_due_run_for_it_makes_no_task(
    empty_db_url: str, start_api: StartApi
) -> None:
    migrate_to_head(empty_db_url)
    api = start_api(empty_db_url)
    a = api.caller()
    phone = a.http.post("/api/v1/personal-phones", json={"name": "gone soon"}).json()["id"]
    on_phone = {"task": {**TASK, "personal_phone_id": phone}, "interval_s": 60}
    sid = a.http.post("/api/v1/schedules", json=on_phone).json()["id"]
    other = _create(a, interval_s=60).json()["id"]
    assert a.http.delete(f"/api/v1/personal-phones/{phone}", params={"confirm": "gone soon"}).status_code == 200

    paused = a.http.get(f"/api/v1/schedules/{sid}").json()
    assert (paused["paused"], paused["paused_reason"]) == (True, "personal_phone_deleted")
    assert a.http.get(f"/api/v1/schedules/{other}").json()["paused"] is False, "only the phone's schedules"
    resumed = a.http.patch(f"/api/v1/schedules/{sid}", json={"paused": False})
    assert (resumed.status_code, resumed.json()["error"]) == (404, "personal_phone_not_found")

    # One running anyway (resumed in the database, as before this rule): its due run makes no task.
    run(set_schedule(api.db_url, uuid.UUID(sid), paused=False, paused_reason=None, next_due_at=utcnow()))
    run(set_schedule(api.db_url, uuid.UUID(other), next_due_at=utcnow()))

    async def tick() -> list:
        async with open_sessions(api.db_url) as sessions:
            queue = TaskQueue.from_settings(api.settings, key_prefix=api.redis_prefix)
            try:
                return await Scheduler(Database(sessions), queue, ScheduleSettings()).tick()
            finally:
                queue.close()

    (made,) = run(tick())
    assert str(made.schedule_id) == other, "the other schedule runs; the deleted phone's makes nothing"
    assert a.http.get(f"/api/v1/schedules/{sid}/runs").json()["items"] == []
    again = a.http.get(f"/api/v1/schedules/{sid}").json()
    assert (again["paused"], again["paused_reason"]) == (True, "personal_phone_deleted")


@pytest.mark.parametrize(
    ("body", "code", "says"),
    [
        ({"cron": "61 * * * *"}, "validation_error", "not a valid cron expression"),
        ({"cron": "0 9 * *"}, "validation_error", "five fields"),
        ({"cron": "0 9 * * *", "timezone": "Mars/Olympus"}, "validation_error", "unknown time zone 'Mars/Olympus'"),
        ({"cron": "0 9 * * *", "interval_s": 60}, "validation_error", "either cron or interval_s, not both"),
        ({}, "validation_error", "give either cron (with timezone) or interval_s"),
        ({"interval_s": 5}, "invalid_schedule", "the minimum interval is 10 s"),
        ({"interval_s": 0}, "validation_error", "interval_s"),
        ({"interval_s": 60, "timezone": "UTC"}, "validation_error", "timezone goes with cron"),
        ({"cron": "0 0 30 2 *"}, "invalid_schedule", "never due"),
        ({"interval_s": 60, "catch_up": "always"}, "validation_error", "catch_up"),
        ({"interval_s": 60, "overlap": "parallel"}, "validation_error", "overlap"),
        ({"interval_s": 60, "task": {"instruction": ""}}, "validation_error", "task.instruction"),
        ({"interval_s": 60, "task": {"instruction": "x", "max_steps": 0}}, "validation_error", "task.max_steps"),
        ({"interval_s": 60, "task": {"instruction": "x", "device_profile": "nosuch"}}, "unknown_device_profile",
         "no device profile named 'nosuch'"),
        ({"interval_s": 60, "tusk": {}}, "validation_error", "tusk"),
    ],
)  # fmt: skip
def test_bad_schedules_answer_422_saying_why(api: Api, body: dict[str, Any], code: str, says: str) -> None:
    a = api.caller()
    answer = a.http.post("/api/v1/schedules", json={"task": TASK, **body})
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"] == code and says in answer.json()["message"], answer.json()


def test_changes_are_checked_like_creation(api: Api) -> None:
    a = api.caller()
    sid = _create(a, interval_s=60).json()["id"]
    for body, says in [({"interval_s": 3}, "minimum interval"), ({"timezone": "Europe/Paris"}, "goes with cron"),
                       ({"cron": "bad"}, "five fields"), ({"paused": "maybe"}, "paused")]:  # fmt: skip
        answer = a.http.patch(f"/api/v1/schedules/{sid}", json=body)
        assert answer.status_code == 422 and says in answer.json()["message"], answer.text
    assert a.http.get(f"/api/v1/schedules/{sid}").json()["interval_s"] == 60, "nothing changed"


def test_tenant_limits_max_schedules_and_min_interval(start_api: StartApi, migrated_pg_url: str) -> None:
    api = start_api(migrated_pg_url, schedules={"max_per_tenant": 2, "min_interval_s": 300})
    a, b = api.caller(), api.caller()
    assert _create(a, interval_s=120).json()["error"] == "invalid_schedule"
    every_minute = _create(a, cron="* * * * *")
    assert every_minute.status_code == 422 and "due every 60 s" in every_minute.json()["message"]
    assert _create(a, interval_s=300).status_code == 201
    assert _create(a, cron="*/5 * * * *").status_code == 201
    third = _create(a, interval_s=600)
    assert (third.status_code, third.json()["error"]) == (409, "limit_reached"), third.text
    assert "schedules.max_per_tenant = 2" in third.json()["message"]
    assert _create(b, interval_s=600).status_code == 201, "the limit is per tenant"


def test_a_schedule_runs_only_on_its_makers_own_personal_phone(api: Api) -> None:
    owner = api.caller()
    colleague = api.caller(tenant_id=owner.tenant_id)
    phone = owner.http.post("/api/v1/personal-phones", json={"name": "mine"}).json()["id"]
    body = {"task": {**TASK, "personal_phone_id": phone}, "interval_s": 60}
    refused = colleague.http.post("/api/v1/schedules", json=body)
    assert (refused.status_code, refused.json()["error"]) == (404, "personal_phone_not_found")
    mine = colleague.http.post("/api/v1/schedules", json={"task": TASK, "interval_s": 60}).json()["id"]
    changed = colleague.http.patch(f"/api/v1/schedules/{mine}", json={"task": body["task"]})
    assert (changed.status_code, changed.json()["error"]) == (404, "personal_phone_not_found")
    assert owner.http.post("/api/v1/schedules", json=body).status_code == 201


def test_another_tenants_schedule_is_not_found(api: Api) -> None:
    a, b = api.caller(), api.caller()
    sid = _create(a, interval_s=60).json()["id"]
    for method in ("GET", "PATCH", "DELETE"):
        answer = b.http.request(method, f"/api/v1/schedules/{sid}", **({"json": {"paused": True}} if method == "PATCH" else {}))
        assert answer.status_code == 404 and answer.json()["error"] == "schedule_not_found"
    assert b.http.get(f"/api/v1/schedules/{sid}/runs").status_code == 404
    assert sid not in str(b.http.get("/api/v1/schedules").json())
    assert a.http.get(f"/api/v1/schedules/{sid}").json()["paused"] is False
