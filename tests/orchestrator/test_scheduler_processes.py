"""Two real ``phonefleet pool`` processes (each runs a scheduler) on one PostgreSQL database, and a
schedule every 20 s with ``overlap`` = skip: one run per due time, never two for one due time, no
two runs at once, and pausing stops new runs — all read from the database. Then catch-up: both
pools stop, a minute of due times passes while they are down (simulated: the schedules' due times
are moved a minute into the past rather than waiting one), two pools start again: ``run_once`` makes
one run, ``skip`` none, and both are next due in the future.

No worker runs here: the test ends each run by writing its final state, as a worker would (the
scheduler only reads it), so it decides when a run is still going across a due time.
"""

from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import func, select

from orchestrator.db import Task, utcnow
from orchestrator.db.database import Database
from orchestrator.services.scheduler import SKIPPED
from orchestrator.services.schedules import ScheduleChange, ScheduleService
from orchestrator.settings import ScheduleSettings
from tests.aio import run
from tests.conditions import GiveUp, wait_until
from tests.databases import migrate_to_head, open_sessions, throwaway_postgres
from tests.orchestrator.schedules import (
    end_run,
    events_of,
    make_principal,
    make_schedule,
    read_schedule,
    runs_of,
    set_schedule,
)
from tests.processes import REPO, AdbServer, stop_process

INTERVAL_S = 20
_S = dt.timedelta(seconds=1)


@pytest.fixture
def db_url() -> Iterator[str]:
    with throwaway_postgres() as db:
        migrate_to_head(db.url)
        yield db.url


def _start_pool(db_url: str, home: Path, adb_server: AdbServer) -> tuple[subprocess.Popen, Path]:
    env = {
        **os.environ,
        "PHONEFLEET_DATABASE_URL": db_url,
        "PHONEFLEET_DATA_DIR": str(home / "data"),
        "PHONEFLEET_POOL__COUNT": "0",  # no phones: only the scheduler (and sweeper, webhooks) matter
        "PHONEFLEET_POOL__MIN_IDLE": "0",
        "PHONEFLEET_SCHEDULES__POLL_S": "0.2",
    }
    env.pop("PHONEFLEET_REDIS_URL", None)  # the broker: a SQLite file of each pool's own
    home.mkdir(parents=True)
    log_path = home / "pool.log"
    command = [sys.executable, "-m", "orchestrator.cli", "pool", "--adb-port", str(adb_server.port)]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    return proc, log_path


@pytest.mark.timeout(300)
def test_two_schedulers_one_run_per_due_time_no_overlap_and_pause(
    tmp_path: Path, db_url: str, adb_server: AdbServer
) -> None:
    principal = run(make_principal(db_url))
    schedule = run(make_schedule(db_url, principal, interval_s=INTERVAL_S, overlap="skip"))
    pools = [_start_pool(db_url, tmp_path / f"pool{i}", adb_server) for i in range(2)]
    try:

        def alive() -> None:
            for proc, log_path in pools:
                if proc.poll() is not None:
                    raise GiveUp(f"phonefleet pool exited with {proc.returncode}:\n{log_path.read_text()}")

        def runs(count: int) -> list[Task] | None:
            alive()
            found = run(runs_of(db_url, schedule.id))
            return found if len(found) >= count else None

        def runs_of_schedule(schedule_id: uuid.UUID) -> list[Task]:
            alive()
            return run(runs_of(db_url, schedule_id))

        def skipped() -> list:
            alive()
            return [e for e in run(events_of(db_url, principal.tenant_id)) if e.type == SKIPPED]

        wait_until(lambda: all("scheduler started" in log.read_text() for _, log in pools), timeout=60,
                   what="both pools run a scheduler")  # fmt: skip
        (run1,) = wait_until(lambda: runs(1), timeout=INTERVAL_S + 30, what="the first run")
        # Run 1 goes on across the next due time: overlap=skip makes no run for it.
        (event,) = wait_until(skipped, timeout=INTERVAL_S + 30, what="the next due time is skipped")
        assert event.payload["reason"] == "overlap"
        assert event.payload["due_at"] == (run1.due_at + INTERVAL_S * _S).isoformat()
        assert len(run(runs_of(db_url, schedule.id))) == 1
        run(end_run(db_url, run1.id))
        run1_end = utcnow()
        run2 = wait_until(lambda: runs(2), timeout=INTERVAL_S + 30, what="the run after the skipped one")[1]
        assert run2.due_at == run1.due_at + 2 * INTERVAL_S * _S
        assert run2.created_at >= run1_end, "no two runs at once"

        async def pause() -> None:
            async with open_sessions(db_url) as sessions:
                await ScheduleService(Database(sessions), ScheduleSettings()).change(
                    principal, schedule.id, ScheduleChange(paused=True)
                )

        run(pause())
        paused_due = run(read_schedule(db_url, schedule.id)).next_due_at
        # Past the due time that would have come next, and a few scheduler passes after it.
        wait_until(lambda: (alive(), utcnow() > paused_due + 2 * _S)[1], timeout=INTERVAL_S + 10,
                   what="past the next due time")  # fmt: skip
        assert len(run(runs_of(db_url, schedule.id))) == 2, "pausing stopped new runs"

        async def per_due_time() -> list[int]:
            async with open_sessions(db_url) as sessions, sessions() as session:
                query = select(func.count()).where(Task.schedule_id == schedule.id).group_by(Task.due_at)
                return list(await session.scalars(query))

        assert run(per_due_time()) == [1, 1], "never two runs for the same due time"

        # Catch-up: both schedulers stop; while they are down a minute of due times passes (simulated
        # by moving the due times a minute into the past, not by waiting one); then they start again.
        once = run(make_schedule(db_url, principal, interval_s=INTERVAL_S, catch_up="run_once"))
        skip = run(make_schedule(db_url, principal, interval_s=INTERVAL_S, catch_up="skip"))
        for proc, log_path in pools:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0, log_path.read_text()
        down_from = utcnow() - 61 * _S
        for missed in (once, skip):
            run(set_schedule(db_url, missed.id, next_due_at=down_from))
        restarted = utcnow()
        pools[:] = [_start_pool(db_url, tmp_path / f"again{i}", adb_server) for i in range(2)]
        (caught_up,) = wait_until(lambda: runs_of_schedule(once.id), timeout=60, what="run_once's one run")
        assert down_from < caught_up.due_at <= restarted, "one run, for the latest missed due time"
        wait_until(lambda: run(read_schedule(db_url, skip.id)).next_due_at > restarted, timeout=30,
                   what="the skip schedule moved on")  # fmt: skip
        for missed in (once, skip):
            assert run(read_schedule(db_url, missed.id)).next_due_at > restarted, "next due in the future"
        assert run(runs_of(db_url, skip.id)) == [], "catch_up=skip: no run for the missed due times"
        assert len(run(runs_of(db_url, once.id))) == 1, "catch_up=run_once: one run for all of them"
        for proc, log_path in pools:
            proc.send_signal(signal.SIGTERM)
            assert proc.wait(timeout=30) == 0, log_path.read_text()
    finally:
        for proc, _ in pools:
            stop_process(proc)

