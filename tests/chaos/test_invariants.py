"""The invariant checker finds what it is there to find: rows made by hand, each breaking one rule."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

from orchestrator.db import Device, Lease, Step, Task, TaskStatus
from tests.chaos import invariants

T0 = dt.datetime(2026, 1, 2, 3, 4, 5, tzinfo=dt.UTC)
SERIAL = "127.0.0.1:20001"


def at(seconds: float) -> dt.datetime:
    return T0 + dt.timedelta(seconds=seconds)


def device() -> Device:
    return Device(id=uuid.uuid4(), serial=SERIAL, provider="sim", state="idle")


def lease(dev: Device, start: float, end: float | None) -> Lease:
    return Lease(id=uuid.uuid4(), device_id=dev.id, task_id=uuid.uuid4(), holder="w",
                 acquired_at=at(start), released_at=None if end is None else at(end))  # fmt: skip


def task(status: TaskStatus, reason: str | None = None, attempts: int = 1, took_s: float = 10) -> Task:
    return Task(id=uuid.uuid4(), status=status, reason=reason, attempts=attempts, timeout_s=60,
                created_at=T0, finished_at=at(took_s))  # fmt: skip


def test_overlapping_and_open_leases_are_found() -> None:
    dev = device()
    devices = {dev.id: dev}
    assert invariants._leased_once([lease(dev, 0, 5), lease(dev, 5, 9)], devices) == []
    overlap = invariants._leased_once([lease(dev, 0, 6), lease(dev, 5, 9)], devices)
    assert len(overlap) == 1 and "leased twice at once" in overlap[0]
    assert "never ended" in invariants._leased_once([lease(dev, 0, None)], devices)[0]


def test_a_lease_without_a_reset_before_it_is_found() -> None:
    dev = device()
    first, second = lease(dev, 1, 5), lease(dev, 8, 12)
    devices = {dev.id: dev}
    reset_both = {SERIAL: [at(0), at(6)]}
    assert invariants._reset_before_each_lease([first, second], devices, {}, reset_both) == []
    reset_once = {SERIAL: [at(0), at(4)]}  # the second "reset" came while the first lease was held
    found = invariants._reset_before_each_lease([first, second], devices, {}, reset_once)
    assert len(found) == 1 and "no reset since its previous lease ended" in found[0]


def test_a_first_step_away_from_the_launcher_is_found() -> None:
    dev = device()
    held = lease(dev, 1, 5)
    steps = {str(held.task_id): [Step(index=0, current_app="Settings", created_at=at(2))]}
    found = invariants._reset_before_each_lease([held], {dev.id: dev}, steps, {SERIAL: [at(0)]})
    assert len(found) == 1 and "not the launcher" in found[0]


def test_endings_the_chaos_suite_refuses() -> None:
    assert invariants._ended_well(task(TaskStatus.SUCCEEDED)) == []
    assert invariants._ended_well(task(TaskStatus.FAILED, "worker_lost", attempts=3)) == []
    assert "without being retried" in invariants._ended_well(task(TaskStatus.FAILED, "device_error"))[0]
    assert (
        "without being retried"
        in invariants._ended_well(task(TaskStatus.FAILED, "worker_lost", attempts=2))[0]
    )
    refused = task(TaskStatus.FAILED, "device_error")
    refused.message = "phone unreachable; not retried: it acted on the phone and retry_after_acting is false"
    assert invariants._ended_well(refused) == []
    assert "neither succeeded" in invariants._ended_well(task(TaskStatus.FAILED, "max_steps", attempts=2))[0]
    assert "neither succeeded" in invariants._ended_well(task(TaskStatus.TIMED_OUT, "timeout"))[0]
    assert "past its budget" in invariants._ended_well(task(TaskStatus.SUCCEEDED, took_s=10_000))[0]
    running = task(TaskStatus.RUNNING)
    running.finished_at = None
    assert "never ended" in invariants._ended_well(running)[0]


def test_the_pool_log_is_read_for_resets(tmp_path: Path) -> None:
    log = tmp_path / "pool.log"
    log.write_text(
        "2026-01-02 03:04:05,678 INFO device_pool.providers.sim phone starting serial=127.0.0.1:20001 pid=1\n"
        "2026-01-02 03:04:09,001 INFO device_pool.providers.sim phone reset serial=127.0.0.1:20001 device_id=x\n"
        "2026-01-02 03:04:10,000 INFO device_pool.pool.manager pool manager running provider=sim\n"
        "2026-01-02 03:04:11,000 WARNING device_pool.providers.sim phone process down serial=127.0.0.1:20002\n"
    )
    found = invariants.pool_resets(log)
    assert list(found) == [SERIAL] and len(found[SERIAL]) == 2
    assert found[SERIAL][1] - found[SERIAL][0] == dt.timedelta(seconds=3.323)


def test_a_500_in_the_api_log_is_found(tmp_path: Path) -> None:
    log = tmp_path / "api.log"
    log.write_text('x INFO uvicorn.access 127.0.0.1:1 - "GET /api/v1/tasks HTTP/1.1" 503 request_id=a\n')
    assert invariants._api_log_clean(log) == []
    log.write_text('x INFO uvicorn.access 127.0.0.1:1 - "GET /api/v1/tasks HTTP/1.1" 500 request_id=a\n')
    assert invariants._api_log_clean(log)
