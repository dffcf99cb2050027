"""``GET /metrics`` and the metrics service, on fleets written by the real writers (LeaseStore,
the worker's TaskRows) into a database of each test's own, so every value is exact."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from orchestrator.db import DeviceState, Event, Lease, Step, TaskStatus, utcnow
from orchestrator.db.database import Database
from orchestrator.services.metrics import MetricsService
from tests.aio import run
from tests.asgi import closed_port
from tests.databases import migrate_to_head, open_sessions
from tests.device_pool.pool.rows import open_store
from tests.orchestrator.api.conftest import StartApi
from tests.orchestrator.factories import make_device, make_task, make_tenant
from worker.run.rows import TaskRows

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]

# Two steps: 0.1 + 1.5 + 0.2 + 0.3 = 2.1 s and 0.1 + 4.0 + 0.2 + 0.5 = 4.8 s.
TIMINGS = [
    {"capture_s": 0.1, "model_s": 1.5, "act_s": 0.2, "settle_s": 0.3, "time_to_first_token_s": None},
    {"capture_s": 0.1, "model_s": 4.0, "act_s": 0.2, "settle_s": 0.5, "time_to_first_token_s": 0.4},
]
CLAIMED_AGO_S = 3.0


@pytest.fixture
def fresh_db(empty_db_url: str) -> str:
    """A migrated database of this test's own (PostgreSQL, then SQLite): the fleet is exactly ours."""
    migrate_to_head(empty_db_url)
    return empty_db_url


def samples(text: str) -> Samples:
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def value(got: Samples, name: str, **labels: str) -> float:
    return got[(name, frozenset(labels.items()))]


async def seed_fleet(url: str) -> uuid.UUID:
    """Tasks in four statuses, three devices, one task leased 3 s after its claim, with two steps."""
    async with open_store(url) as (store, sessions):
        async with sessions() as session, session.begin():
            tenant = await make_tenant(session)
            await make_device(session)  # idle: the lease below takes it
            await make_device(session, state=DeviceState.UNHEALTHY)
            claimed_at = utcnow() - dt.timedelta(seconds=CLAIMED_AGO_S)
            task = await make_task(session, tenant, status=TaskStatus.LEASING, claimed_at=claimed_at,
                                   worker_id="w-1", heartbeat_at=claimed_at)  # fmt: skip
            await make_task(session, tenant)  # queued, no profile
            await make_task(session, tenant, device_profile={"android": 13})  # queued, ad hoc
            await make_task(session, tenant, device_profile="pixel")  # queued, a named profile
            await make_task(session, tenant, status=TaskStatus.SUCCEEDED)
        grant = await store.acquire(holder="w-1", tenant_id=tenant.id, task_id=task.id, ttl_s=60)
        assert grant is not None
        async with sessions() as session, session.begin():
            await make_device(session)  # idle
        rows = TaskRows(Database(sessions), task.id, "w-1")
        rows.tenant_id = tenant.id
        for index, timings in enumerate(TIMINGS):
            await rows.add_step({"index": index, "timings": timings}, {"index": index})
        return task.id


async def scrape(url: str, scrapes: int = 1, **options: Any) -> list[Samples]:
    async with open_sessions(url) as sessions:
        service = MetricsService(Database(sessions), **options)
        return [samples((await service.render())[0].decode()) for _ in range(scrapes)]


def test_gauges_and_histograms_reflect_the_fleet(fresh_db: str) -> None:
    run(seed_fleet(fresh_db))
    first, second = run(scrape(fresh_db, scrapes=2, lag_s=0))
    for got in (first, second):  # a second scrape counts nothing twice
        assert value(got, "phonefleet_tasks", status="queued") == 3
        assert value(got, "phonefleet_tasks", status="leasing") == 1
        assert value(got, "phonefleet_tasks", status="succeeded") == 1
        assert value(got, "phonefleet_tasks", status="running") == 0  # every status, zeros included
        assert value(got, "phonefleet_devices", state="idle") == 1
        assert value(got, "phonefleet_devices", state="leased") == 1
        assert value(got, "phonefleet_devices", state="unhealthy") == 1
        assert value(got, "phonefleet_devices", state="retired") == 0
        assert value(got, "phonefleet_queue_depth") == 3
        assert value(got, "phonefleet_queue_depth_by_profile", profile="default") == 2
        assert value(got, "phonefleet_queue_depth_by_profile", profile="pixel") == 1

        steps = "phonefleet_step_duration_seconds"
        assert value(got, f"{steps}_count") == 2
        assert value(got, f"{steps}_sum") == pytest.approx(6.9)
        assert value(got, f"{steps}_bucket", le="2.0") == 0
        assert value(got, f"{steps}_bucket", le="3.0") == 1
        assert value(got, f"{steps}_bucket", le="5.0") == 2
        assert value(got, f"{steps}_bucket", le="+Inf") == 2
        model = "phonefleet_model_latency_seconds"
        assert value(got, f"{model}_count") == 2
        assert value(got, f"{model}_sum") == pytest.approx(5.5)
        assert value(got, f"{model}_bucket", le="1.0") == 0
        assert value(got, f"{model}_bucket", le="2.0") == 1
        assert value(got, f"{model}_bucket", le="5.0") == 2
        wait = "phonefleet_lease_wait_seconds"
        assert value(got, f"{wait}_count") == 1
        assert CLAIMED_AGO_S <= value(got, f"{wait}_sum") < CLAIMED_AGO_S + 30
        assert value(got, f"{wait}_bucket", le="2.5") == 0
        assert value(got, f"{wait}_bucket", le="+Inf") == 1
        assert value(got, "phonefleet_metrics_ingested_until_timestamp_seconds", source="steps") > 0


async def add_step_rows(url: str, created: list[dt.datetime]) -> list[int]:
    """One task with a step (and its task.step event) per time in ``created``; the event ids."""
    async with open_sessions(url) as sessions, sessions() as session, session.begin():
        tenant = await make_tenant(session)
        task = await make_task(session, tenant, status=TaskStatus.RUNNING)
        ids = []
        for index, at in enumerate(created):
            session.add(Step(task_id=task.id, index=index, timings=TIMINGS[0], created_at=at))
            event = Event(tenant_id=tenant.id, task_id=task.id, type="task.step", payload={"index": index},
                          created_at=at)  # fmt: skip
            session.add(event)
            await session.flush()
            ids.append(event.id)
        return ids


async def backdate(url: str, event_id: int, at: dt.datetime) -> None:
    async with open_sessions(url) as sessions, sessions() as session, session.begin():
        await session.execute(update(Event).where(Event.id == event_id).values(created_at=at))


def test_steps_wait_out_the_lag_and_a_young_row_is_never_skipped(fresh_db: str) -> None:
    """A row younger than the lag holds back the rows after it (a later id may have committed first)."""
    now = utcnow()
    young, old = run(add_step_rows(fresh_db, [now, now - dt.timedelta(seconds=60)]))

    async def scenario() -> list[float]:
        async with open_sessions(fresh_db) as sessions:
            service = MetricsService(Database(sessions), lag_s=30)
            counts = []
            for _ in range(2):
                got = samples((await service.render())[0].decode())
                counts.append(value(got, "phonefleet_step_duration_seconds_count"))
            await backdate(fresh_db, young, now - dt.timedelta(seconds=45))
            got = samples((await service.render())[0].decode())
            counts.append(value(got, "phonefleet_step_duration_seconds_count"))
            return counts

    assert run(scenario()) == [0, 0, 2]
    assert young < old


def test_each_scrape_ingests_at_most_a_batch(fresh_db: str) -> None:
    past = utcnow() - dt.timedelta(seconds=10)
    run(add_step_rows(fresh_db, [past] * 5))
    got = run(scrape(fresh_db, scrapes=4, lag_s=0, batch=2))
    assert [value(s, "phonefleet_step_duration_seconds_count") for s in got] == [2, 4, 5, 5]


@pytest.fixture
def pg_fresh_db(pg_url: str) -> str:
    migrate_to_head(pg_url)
    return pg_url


def test_metrics_route_on_two_replicas_reports_the_same_fleet(start_api: StartApi, pg_fresh_db: str) -> None:
    task_id = run(seed_fleet(pg_fresh_db))
    # The steps were just written: the app's 2 s lag would hold them back; age them.
    async def age() -> None:
        async with open_sessions(pg_fresh_db) as sessions, sessions() as session, session.begin():
            await session.execute(
                update(Event).where(Event.task_id == task_id)
                .values(created_at=utcnow() - dt.timedelta(seconds=30))
            )  # fmt: skip

    run(age())
    one, two = start_api(pg_fresh_db), start_api(pg_fresh_db)
    r = one.client().get("/metrics")
    assert r.status_code == 200, r.text
    assert r.headers["content-type"].startswith("text/plain")
    got = samples(r.text)
    assert value(got, "phonefleet_tasks", status="queued") == 3
    assert value(got, "phonefleet_step_duration_seconds_count") == 2
    assert value(got, "phonefleet_lease_wait_seconds_count") == 1
    # The same fleet, but for the phone-minutes of a lease still held, which grow between the scrapes.
    growing = "phonefleet_tenant_phone_minutes_today"
    assert {k: v for k, v in samples(two.client().get("/metrics").text).items() if k[0] != growing} == {
        k: v for k, v in got.items() if k[0] != growing
    }
    caller = one.caller()
    assert caller.http.post("/api/v1/tasks", json={"instruction": "one more"}).status_code == 202
    assert value(samples(two.client().get("/metrics").text), "phonefleet_queue_depth") == 4
    assert "/metrics" not in one.client().get("/openapi.json").json()["paths"]


def test_openmetrics_when_asked(start_api: StartApi, migrated_sqlite_url: str) -> None:
    api = start_api(migrated_sqlite_url)
    r = api.client().get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/openmetrics-text")
    assert r.text.rstrip().endswith("# EOF")


def test_metrics_token_is_required_when_set(start_api: StartApi, migrated_sqlite_url: str) -> None:
    api = start_api(migrated_sqlite_url, api={"metrics_token": "scrape-me-7f3a"})
    caller = api.caller()
    for headers in ({}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Bearer {caller.key}"}):
        r = api.client().get("/metrics", headers=headers)
        assert r.status_code == 401 and "METRICS_TOKEN" in r.json()["message"], r.text
    r = api.client().get("/metrics", headers={"Authorization": "Bearer scrape-me-7f3a"})
    assert r.status_code == 200 and "phonefleet_tasks" in r.text


def test_metrics_answer_503_when_the_database_is_down(start_api: StartApi, tmp_path: Any) -> None:
    api = start_api(f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port()}/nothing")
    r = api.client().get("/metrics")
    assert r.status_code == 503 and r.json()["error"] == "database_unavailable", r.text
    assert "Retry-After" in r.headers



async def seed_tenant_usage(url: str) -> str:
    """A tenant with a limit, a leasing task whose lease began 90 s ago, and a step with tokens; its name."""
    async with open_store(url) as (store, sessions):
        async with sessions() as session, session.begin():
            tenant = await make_tenant(session)
            tenant.limits = {"max_concurrent_tasks": 2}
            await make_device(session)
            task = await make_task(session, tenant, status=TaskStatus.LEASING, worker_id="w-1", heartbeat_at=utcnow())
            await make_task(session, tenant, status=TaskStatus.SUCCEEDED)
            session.add(Step(task_id=task.id, index=0, timings=TIMINGS[0], prompt_tokens=1000, completion_tokens=40))
        grant = await store.acquire(holder="w-1", tenant_id=tenant.id, task_id=task.id, ttl_s=600)
        assert grant is not None
        async with sessions() as session, session.begin():
            await session.execute(
                update(Lease).where(Lease.id == grant.lease_id).values(acquired_at=utcnow() - dt.timedelta(seconds=90))
            )
        return tenant.name


def test_per_tenant_usage_and_limits(fresh_db: str) -> None:
    name = run(seed_tenant_usage(fresh_db))
    [got] = run(scrape(fresh_db, lag_s=0))
    assert value(got, "phonefleet_tenant_tasks_running", tenant=name) == 1
    assert value(got, "phonefleet_tenant_tasks_today", tenant=name) == 2
    assert value(got, "phonefleet_tenant_sessions_active", tenant=name) == 0
    assert 1.5 <= value(got, "phonefleet_tenant_phone_minutes_today", tenant=name) < 3
    assert value(got, "phonefleet_tenant_model_tokens_today", tenant=name, kind="prompt") == 1000
    assert value(got, "phonefleet_tenant_model_tokens_today", tenant=name, kind="completion") == 40
    assert value(got, "phonefleet_tenant_limit", tenant=name, limit="max_concurrent_tasks") == 2
    assert (("phonefleet_tenant_limit", frozenset({("tenant", name), ("limit", "max_concurrent_devices")}))) not in got
