"""The scheduler's passes, with the clock passed in (``tick(now)``), on PostgreSQL and SQLite and the
real Redis as the broker: one run per due time, overlap, catch-up, pausing, failures.

Downtime is simulated by moving a schedule's ``next_due_at`` a minute into the past instead of
waiting a real minute: to the scheduler the two are the same row. Runs are ended by writing their
final state, as a worker would; the scheduler only reads it.
"""

from __future__ import annotations

import asyncio
import datetime as dt
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from orchestrator.db import CatchUp, TaskStatus, make_engine, make_sessionmaker, utcnow
from orchestrator.db.database import Database
from orchestrator.queue import TASKS_QUEUE, TaskQueue
from orchestrator.services.scheduler import FAILING, PAUSED, SKIPPED, Scheduler
from orchestrator.services.schedules import ScheduleChange, ScheduleService
from orchestrator.settings import ScheduleSettings, Settings
from tests.aio import run
from tests.conftest import REDIS_URL
from tests.databases import emptied, migrate_to_head, open_sessions, throwaway_postgres
from tests.orchestrator.schedules import (
    end_run,
    events_of,
    make_principal,
    make_schedule,
    read_schedule,
    runs_of,
    set_schedule,
)

S = dt.timedelta(seconds=1)
SETTINGS = ScheduleSettings(poll_s=0.1)


@pytest.fixture(scope="module")
def scheduler_pg_url() -> Iterator[str]:
    # A database of the module's own: a pass looks at every schedule in it.
    with throwaway_postgres() as db:
        migrate_to_head(db.url)
        yield db.url


@pytest.fixture(params=["postgresql", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    pg = request.getfixturevalue("scheduler_pg_url") if request.param == "postgresql" else ""
    return emptied(request.param, pg, tmp_path, "schedules, tasks, events")


@pytest.fixture
def queue(tmp_path: Path, redis_prefix: str) -> Iterator[TaskQueue]:
    q = TaskQueue.from_settings(Settings(data_dir=tmp_path / "data", redis_url=REDIS_URL), key_prefix=redis_prefix)
    yield q
    q.close()


def _queued(prefix: str) -> int:
    r = redis.Redis.from_url(REDIS_URL)
    try:
        return r.llen(f"{prefix}{TASKS_QUEUE}")
    finally:
        r.close()


async def _tick(url: str, queue: TaskQueue, now: dt.datetime, settings: ScheduleSettings = SETTINGS) -> list:
    async with open_sessions(url) as sessions:
        return await Scheduler(Database(sessions), queue, settings).tick(now)


def test_a_due_time_makes_one_run_and_the_next_due_time_moves_on(
    url: str, queue: TaskQueue, redis_prefix: str
) -> None:
    principal = run(make_principal(url))
    schedule = run(make_schedule(url, principal, interval_s=20))
    due = schedule.next_due_at
    assert run(_tick(url, queue, due - S)) == [], "not due yet"
    made = run(_tick(url, queue, due + S))
    assert [(t.schedule_id, t.due_at) for t in made] == [(schedule.id, due)]
    assert run(_tick(url, queue, due + 2 * S)) == [], "a due time is acted on once"
    (task,) = run(runs_of(url, schedule.id))
    assert (task.status, task.tenant_id, task.created_by) == (TaskStatus.QUEUED, principal.tenant_id, principal.key_id)
    assert task.instruction == "Open Settings and turn on Wi-Fi"
    assert _queued(redis_prefix) == 1, "the run was enqueued like any task"
    row = run(read_schedule(url, schedule.id))
    assert (row.next_due_at, row.last_due_at, row.last_run_id) == (due + 20 * S, due, task.id)


def test_schedulers_racing_for_a_due_time_make_one_run(url: str, queue: TaskQueue) -> None:
    """Four schedulers, each on an engine (connection pool) of its own, pass at the same moment."""
    principal = run(make_principal(url))
    schedules = [run(make_schedule(url, principal, interval_s=20, overlap="queue")) for _ in range(3)]
    now = max(s.next_due_at for s in schedules) + S

    async def race() -> list:
        engines = [make_engine(url) for _ in range(4)]
        try:
            passes = [Scheduler(Database(make_sessionmaker(e)), queue, SETTINGS, name=f"s{i}").tick(now)
                      for i, e in enumerate(engines)]  # fmt: skip
            return [task for made in await asyncio.gather(*passes) for task in made]
        finally:
            for engine in engines:
                await engine.dispose()

    made = run(race())
    assert sorted(t.schedule_id for t in made) == sorted(s.id for s in schedules)
    for schedule in schedules:
        assert [t.due_at for t in run(runs_of(url, schedule.id))] == [schedule.next_due_at]


def test_overlap_skip_makes_no_run_while_the_previous_goes_on(url: str, queue: TaskQueue) -> None:
    principal = run(make_principal(url))
    schedule = run(make_schedule(url, principal, interval_s=20, overlap="skip"))
    first = schedule.next_due_at
    (run1,) = run(_tick(url, queue, first + S))
    assert run(_tick(url, queue, first + 21 * S)) == [], "run 1 is still queued"
    skipped = [e.payload for e in run(events_of(url, principal.tenant_id)) if e.type == SKIPPED]
    assert skipped == [{"schedule_id": str(schedule.id), "due_at": (first + 20 * S).isoformat(), "reason": "overlap"}]
    run(end_run(url, run1.id))
    (run2,) = run(_tick(url, queue, first + 41 * S))
    assert run2.due_at == first + 40 * S
    assert [t.due_at for t in run(runs_of(url, schedule.id))] == [first, first + 40 * S]


def test_overlap_queue_starts_one_waiting_run_when_the_previous_ends(url: str, queue: TaskQueue) -> None:
    principal = run(make_principal(url))
    schedule = run(make_schedule(url, principal, interval_s=20, overlap="queue"))
    first = schedule.next_due_at
    (run1,) = run(_tick(url, queue, first + S))
    assert run(_tick(url, queue, first + 21 * S)) == [], "the second run waits"
    assert run(read_schedule(url, schedule.id)).queued_due_at == first + 20 * S
    assert run(_tick(url, queue, first + 41 * S)) == [], "at most one waits: this due time is skipped"
    assert run(read_schedule(url, schedule.id)).queued_due_at == first + 20 * S
    run(end_run(url, run1.id, TaskStatus.FAILED))
    (run2,) = run(_tick(url, queue, first + 42 * S))
    assert run2.due_at == first + 20 * S, "the waiting run starts once the previous one ended"
    assert run(read_schedule(url, schedule.id)).queued_due_at is None
    assert len(run(runs_of(url, schedule.id))) == 2


def test_pausing_stops_runs_and_resuming_starts_from_now(url: str, queue: TaskQueue) -> None:
    principal = run(make_principal(url))
    schedule = run(make_schedule(url, principal, interval_s=20))
    due = schedule.next_due_at

    async def change(paused: bool) -> None:
        async with open_sessions(url) as sessions:
            await ScheduleService(Database(sessions), SETTINGS).change(
                principal, schedule.id, ScheduleChange(paused=paused)
            )

    run(change(True))
    assert run(_tick(url, queue, due + 300 * S)) == [], "a paused schedule makes no runs"
    assert run(runs_of(url, schedule.id)) == []
    before = utcnow()
    run(change(False))
    row = run(read_schedule(url, schedule.id))
    assert not row.paused and before < row.next_due_at <= utcnow() + 20 * S
    assert len(run(_tick(url, queue, row.next_due_at))) == 1


@pytest.mark.parametrize("catch_up", [CatchUp.SKIP, CatchUp.RUN_ONCE])
def test_catch_up_after_the_schedulers_were_down_for_a_minute(url: str, queue: TaskQueue, catch_up: CatchUp) -> None:
    principal = run(make_principal(url))
    schedule = run(make_schedule(url, principal, interval_s=20, catch_up=catch_up.value))
    now = utcnow()
    missed_from = now - 61 * S  # down for a minute: the due times at -61, -41, -21 and -1 s passed
    run(set_schedule(url, schedule.id, next_due_at=missed_from, last_due_at=missed_from - 20 * S))
    made = run(_tick(url, queue, now))
    row = run(read_schedule(url, schedule.id))
    assert row.next_due_at == missed_from + 80 * S and row.next_due_at > now, "the next due time is in the future"
    runs = run(runs_of(url, schedule.id))
    if catch_up == CatchUp.SKIP:
        assert made == [] and runs == []
        (event,) = run(events_of(url, principal.tenant_id))
        assert (event.type, event.payload["reason"]) == (SKIPPED, "missed")
    else:
        assert [t.due_at for t in runs] == [missed_from + 60 * S], "one run for all the missed due times"
    assert run(_tick(url, queue, now + S)) == [], "nothing more until the next due time"


def test_a_schedule_whose_runs_keep_failing_says_so_and_pauses_itself(url: str, queue: TaskQueue) -> None:
    settings = ScheduleSettings(max_consecutive_failures=3, poll_s=0.1)
    principal = run(make_principal(url))
    schedule = run(make_schedule(url, principal, interval_s=20))
    due = schedule.next_due_at
    outcomes = [TaskStatus.FAILED, TaskStatus.SUCCEEDED, TaskStatus.FAILED, TaskStatus.CANCELLED,
                TaskStatus.TIMED_OUT, TaskStatus.FAILED]  # fmt: skip
    for i, outcome in enumerate(outcomes):
        (task,) = run(_tick(url, queue, due + (20 * i + 1) * S, settings))
        run(end_run(url, task.id, outcome))
    run(_tick(url, queue, due + (20 * len(outcomes)) * S, settings))  # counts the last end; paused: no run
    row = run(read_schedule(url, schedule.id))
    assert (row.paused, row.paused_reason, row.consecutive_failures) == (True, "failures", 3)
    assert len(run(runs_of(url, schedule.id))) == len(outcomes)
    events = run(events_of(url, principal.tenant_id))
    assert [e.payload["consecutive_failures"] for e in events if e.type == FAILING] == [1, 1, 2, 3]
    (paused,) = [e for e in events if e.type == PAUSED]
    assert paused.payload["reason"] == "failures" and paused.payload["schedule_id"] == str(schedule.id)
    assert run(_tick(url, queue, due + 400 * S, settings)) == [], "paused by itself: no more runs"


def test_a_schedule_with_subgoals_makes_runs_that_are_chains(url: str, queue: TaskQueue) -> None:
    principal = run(make_principal(url))
    task = {"instruction": "Order the groceries", "subgoals": ["Open the shop", "Pay"], "on_step_failure": "ask"}
    schedule = run(make_schedule(url, principal, task=task))
    assert schedule.task["subgoals"] == ["Open the shop", "Pay"]
    run(_tick(url, queue, schedule.next_due_at + S))
    (made,) = run(runs_of(url, schedule.id))
    assert made.subgoals == [
        {"index": 0, "goal": "Open the shop", "status": "pending"},
        {"index": 1, "goal": "Pay", "status": "pending"},
    ]
    assert made.on_step_failure == "ask"


def test_a_schedules_allowed_apps_go_with_each_run(url: str, queue: TaskQueue) -> None:
    principal = run(make_principal(url))
    apps = ["com.android.settings"]
    body = {"instruction": "Turn on Wi-Fi", "allowed_apps": apps}
    schedule = run(make_schedule(url, principal, interval_s=20, task=body))
    assert schedule.task["allowed_apps"] == apps
    run(_tick(url, queue, schedule.next_due_at + S))
    (task,) = run(runs_of(url, schedule.id))
    assert task.allowed_apps == apps  # the run is held to the schedule's apps (docs/security.md)
