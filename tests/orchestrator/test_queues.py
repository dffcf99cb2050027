"""A Celery queue per named device profile: the API's enqueue, the sweeper's re-enqueue and the
queues a worker consumes, on the real Redis (each test's keys under its own prefix)."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
import redis
from pydantic import ValidationError

from orchestrator.cli import main
from orchestrator.db import TaskStatus
from orchestrator.queue import TASKS_QUEUE, TaskQueue, queue_for
from orchestrator.settings import Settings
from tests.aio import run
from tests.conftest import REDIS_URL
from tests.orchestrator.conftest import Api, StartApi, decode_celery_message
from tests.orchestrator.factories import in_seconds

# Reused, not copied: the sweeper tests' database (one of this module's own), queue and helpers.
from tests.orchestrator.test_sweeper import _add_task, _sweep, queue, sweeper_pg_url, url  # noqa: F401
from worker.celery_app import worker_queues

PROFILES = {"pixel13": {"android": 13, "width": 1080}, "tablet": {"width": 1600}}
PIXEL13, TABLET = f"{TASKS_QUEUE}.pixel13", f"{TASKS_QUEUE}.tablet"


def _messages(prefix: str, queue_name: str) -> list[dict[str, Any]]:
    """The Celery messages waiting in ``queue_name`` (a Redis list under the test's prefix)."""
    r = redis.Redis.from_url(REDIS_URL)
    try:
        raw = r.lrange(f"{prefix}{queue_name}", 0, -1)
    finally:
        r.close()
    return [decode_celery_message(item) for item in raw]


def _queued_ids(prefix: str) -> dict[str, list[str]]:
    return {q: [m["args"][0] for m in _messages(prefix, q)] for q in (TASKS_QUEUE, PIXEL13, TABLET)}


@pytest.fixture
def profiled_api(start_api: StartApi, db_url: str) -> Api:
    return start_api(db_url, pool={"profiles": PROFILES})


def test_a_named_profile_task_goes_to_its_own_queue(profiled_api: Api, redis_prefix: str) -> None:
    caller = profiled_api.caller()
    named = caller.http.post("/api/v1/tasks", json={"instruction": "x", "device_profile": "pixel13"})
    adhoc = caller.http.post("/api/v1/tasks", json={"instruction": "x", "device_profile": {"android": 13}})
    plain = caller.http.post("/api/v1/tasks", json={"instruction": "x"})
    assert [r.status_code for r in (named, adhoc, plain)] == [202] * 3, named.text
    ids = [r.json()["id"] for r in (named, adhoc, plain)]
    # Stored as asked: read back, the task names its profile.
    assert caller.http.get(f"/api/v1/tasks/{ids[0]}").json()["device_profile"] == "pixel13"
    assert _queued_ids(redis_prefix) == {TASKS_QUEUE: [ids[2], ids[1]], PIXEL13: [ids[0]], TABLET: []}

    # A replayed Idempotency-Key sends nothing again.
    body = {"instruction": "y", "device_profile": "tablet"}
    first = caller.http.post("/api/v1/tasks", json=body, headers={"Idempotency-Key": "k1"})
    again = caller.http.post("/api/v1/tasks", json=body, headers={"Idempotency-Key": "k1"})
    assert (first.status_code, again.status_code) == (202, 200)
    assert _queued_ids(redis_prefix)[TABLET] == [first.json()["id"]]


def test_an_unknown_profile_is_refused_with_the_known_names(
    profiled_api: Api, start_api: StartApi, migrated_sqlite_url: str, redis_prefix: str
) -> None:
    caller = profiled_api.caller()
    r = caller.http.post("/api/v1/tasks", json={"instruction": "x", "device_profile": "pixel99"})
    assert r.status_code == 422, r.text
    body = r.json()
    assert body["error"] == "unknown_device_profile"
    assert "'pixel99'" in body["message"] and "pixel13, tablet" in body["message"]
    for bad in ("pixel 13", "a.b", "", "-x", "p" * 65, "pixel13\u0000"):
        r = caller.http.post("/api/v1/tasks", json={"instruction": "x", "device_profile": bad})
        assert r.status_code == 422 and r.json()["error"] == "validation_error", (bad, r.text)
    assert caller.http.get("/api/v1/tasks").json()["items"] == []  # nothing created
    assert _queued_ids(redis_prefix) == {TASKS_QUEUE: [], PIXEL13: [], TABLET: []}

    # With no profiles configured, a name is refused and the message says where they come from.
    bare = start_api(migrated_sqlite_url).caller()
    r = bare.http.post("/api/v1/tasks", json={"instruction": "x", "device_profile": "pixel13"})
    assert r.status_code == 422 and "PHONEFLEET_POOL__PROFILES" in r.json()["message"], r.text


def test_the_sweeper_reenqueues_to_the_queue_of_the_first_enqueue(
    url: str,  # noqa: F811
    queue: TaskQueue,  # noqa: F811
    redis_prefix: str,
) -> None:
    lost_message = run(_add_task(url, device_profile="pixel13", created_at=in_seconds(-120)))
    lost_worker = run(_add_task(url, device_profile="tablet", status=TaskStatus.RUNNING, worker_id="h:1/a",
                                attempts=1, claimed_at=in_seconds(-600), heartbeat_at=in_seconds(-300)))  # fmt: skip
    adhoc = run(_add_task(url, device_profile={"width": 1600}, created_at=in_seconds(-120)))

    report = run(_sweep(url, queue))
    assert sorted(report.requeued) == sorted([lost_message, lost_worker, adhoc])
    queued = _queued_ids(redis_prefix)
    assert queued == {TASKS_QUEUE: [str(adhoc)], PIXEL13: [str(lost_message)], TABLET: [str(lost_worker)]}
    # The one rule both enqueues follow.
    assert [queue_for(p) for p in ("pixel13", "tablet", {"width": 1600}, None)] == [
        PIXEL13, TABLET, TASKS_QUEUE, TASKS_QUEUE,
    ]  # fmt: skip


def test_worker_queues_default_to_every_profile_and_refuse_unknown_ones(tmp_path: Any) -> None:
    settings = Settings(data_dir=tmp_path, pool={"profiles": PROFILES})
    assert worker_queues(settings) == [TASKS_QUEUE, PIXEL13, TABLET]
    assert worker_queues(settings, ["tablet", "default", "tablet"]) == [TABLET, TASKS_QUEUE]
    assert worker_queues(Settings(data_dir=tmp_path)) == [TASKS_QUEUE]  # what `phonefleet up` runs
    with pytest.raises(ValueError, match=r"pixel99.*known: default, pixel13, tablet"):
        worker_queues(settings, ["pixel13", "pixel99"])
    for bad in ("default", "a.b", "has space", ""):
        with pytest.raises(ValidationError, match="not a profile name"):
            Settings(data_dir=tmp_path, pool={"profiles": {bad: {}}})


def test_phonefleet_worker_refuses_an_unknown_profile(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Any
) -> None:
    monkeypatch.setenv("PHONEFLEET_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("PHONEFLEET_POOL__PROFILES", '{"pixel13": {"android": 13}}')
    assert main(["worker", "--profiles", f"pixel13,nope-{uuid.uuid4().hex[:4]}"]) == 2
    err = capsys.readouterr().err
    assert "unknown device profile" in err and "known: default, pixel13" in err
    with pytest.raises(SystemExit) as both:
        main(["worker", "--profiles", "pixel13", "--queues", "q"])
    assert both.value.code == 2
