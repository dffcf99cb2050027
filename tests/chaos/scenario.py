"""One chaos scenario: a fleet at work, a fault injected in the middle of its tasks, then the
invariants (``tests/chaos/invariants.py``) and the recovery time, read from the database.

The workload is the same everywhere: ``PHONES`` virtual phones, two ``phonefleet worker``s of one
thread each, the reference model replaying ``SCRIPT`` (launch Settings, wait, finish: so a phone
that was not reset shows Settings to the next task's first step), and ``TASKS`` tasks submitted at
once, so that when the fault hits two run and the rest wait in the queue.

Recovery, from the database's own timestamps (UTC, written by the processes):

- ``moving_again_s``: from the fault's end (a kill's instant, a restart's completion) until every
  task that had not ended by then has moved — a step recorded after it, or its end;
- ``first_success_s``: from the fault until the first task succeeds after it;
- ``all_ended_s``: from the fault until the last task ends.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import func, select

from orchestrator.db import Step, Task, TaskStatus
from tests.chaos import invariants, report
from tests.conditions import wait_until
from tests.processes import AdbServer, ReferenceModel
from tests.redis_servers import PrivateRedis
from tests.system.conftest import Fleet, Service

PHONES = 2
TASKS = 4
WORKERS = 2
SCRIPT = [
    'do(action="Launch", app="Settings")',
    'do(action="Wait", duration="4 seconds")',
    'finish(message="done")',
]
TASK_TIMEOUT_S = 150  # each attempt's budget: longer than the longest outage (the model's 30 s) and a run
# `phonefleet pool`'s options: sweeps, reaps and idle health checks often, so a scenario is short.
POOL_ARGS = ["--sweep-interval", "1", "--reap-interval", "1", "--health-interval", "5"]
# Worker liveness shortened (a lost worker is found after 6 s, not 15 s): the bound with the
# defaults is tests/system/test_worker_lost.py's. The PostgreSQL scenario keeps the defaults.
QUICK_LIVENESS = {"PHONEFLEET_POOL__WORKER_LOST_S": "6", "PHONEFLEET_POOL__WORKER_HEARTBEAT_S": "2"}


def hold(seconds: float) -> None:
    """Keep a fault in place this long: the fault's duration, a behaviour of the test, not a wait for
    something to happen (those use ``wait_until``)."""
    time.sleep(seconds)


@dataclass
class Fault:
    what: str
    at: dt.datetime
    cleared_at: dt.datetime | None = None


@dataclass
class Scenario:
    """A fleet on a private Redis, its model server and workers, and the tasks a scenario submitted."""

    name: str
    fleet: Fleet
    redis: PrivateRedis
    adb: AdbServer
    model_port: int
    model: ReferenceModel
    workers: list[Service]
    submitted: list[str] = field(default_factory=list)
    fault: Fault | None = None
    started: float = field(default_factory=time.monotonic)

    # --- the workload ----------------------------------------------------------------------------

    def submit(self, count: int = TASKS) -> list[str]:
        ids = [
            self.fleet.submit(
                f"{self.name}: open Settings and wait ({i})", max_steps=10, timeout_s=TASK_TIMEOUT_S
            )["id"]
            for i in range(count)
        ]
        self.submitted += ids
        return ids

    def tasks(self) -> dict[str, Task]:
        return {str(t.id): t for t in self.fleet.rows(select(Task).order_by(Task.created_at))}

    def in_flight(self, count: int = WORKERS) -> list[Task]:
        """Wait until ``count`` tasks are in the middle of their work at once: running, their first step
        (Launch) recorded and not their second, so each is in its 4 s Wait, its next screenshot and
        model call still to come, and no worker is free to take a queued task; those tasks."""

        def waiting_mid_task() -> list[Task] | None:
            one_step = set(
                self.fleet.rows(select(Step.task_id).group_by(Step.task_id).having(func.count() == 1))
            )
            tasks = [t for t in self.tasks().values() if t.status == TaskStatus.RUNNING and t.id in one_step]
            return tasks if len(tasks) >= count else None

        return wait_until(
            waiting_mid_task, timeout=90, interval=0.1, what=f"{count} tasks in their Wait step"
        )

    def worker_of(self, task: Task) -> Service:
        """The worker process running ``task`` (its ``worker_id`` is ``host:pid/nonce``)."""
        pid = int(task.worker_id.split("/")[0].rsplit(":", 1)[1])
        return next(w for w in self.workers if w.proc.pid == pid)

    def serial_of(self, task: Task) -> str:
        return next(d["serial"] for d in self.devices() if d["id"] == task.device_id)

    def devices(self) -> list[dict[str, Any]]:
        from orchestrator.db import Device

        return [{"id": d.id, "serial": d.serial, "state": d.state} for d in self.fleet.rows(select(Device))]

    # --- the fault -------------------------------------------------------------------------------

    @contextlib.contextmanager
    def injecting(self, what: str) -> Iterator[Fault]:
        """The block is the fault: it starts on entry and is over (the service back) on exit."""
        assert self.fault is None, "one fault per scenario"
        self.fault = Fault(what, dt.datetime.now(dt.UTC))
        yield self.fault
        self.fault.cleared_at = dt.datetime.now(dt.UTC)

    # --- the end ---------------------------------------------------------------------------------

    def settle(self, within_s: float, *, all_succeed: bool = True) -> dict[str, Any]:
        """Wait (at most ``within_s`` after the fault) for every task to end and the phones to be idle;
        then check the invariants, record the recovery, and assert. Returns the record."""
        assert self.fault is not None and self.fault.cleared_at is not None, "settle after the fault"
        failure: str | None = None
        try:
            wait_until(
                lambda: all(t.status.is_final for t in self.tasks().values()),
                timeout=within_s, interval=0.25, what=f"every task ended within {within_s:g} s of the fault",
            )  # fmt: skip
            wait_until(
                lambda: sum(d["state"] == "idle" for d in self.devices()) == PHONES,
                timeout=60, interval=0.25, what="every phone idle again",
            )  # fmt: skip
        except TimeoutError as exc:
            failure = f"{exc}\n" + self._table()
        problems = invariants.check(self.fleet, self.submitted, PHONES)
        tasks = self.tasks()
        if all_succeed:
            problems += [
                f"task {t.id} ended {t.status} ({t.reason}: {t.message}) after {t.attempts} attempts; "
                f"every task must succeed after one fault ({self.fault.what})"
                for t in tasks.values()
                if t.status.is_final and t.status != TaskStatus.SUCCEEDED
            ]
        record = self._measure(tasks, failure or "; ".join(problems) or None)
        report.record(record)
        if failure:
            raise AssertionError(f"{self.name}: {failure}\n{self.fleet.tails()}")
        assert not problems, f"{self.name}: {len(problems)} invariant(s) broken:\n" + "\n".join(problems)
        return record

    def _measure(self, tasks: dict[str, Task], failure: str | None) -> dict[str, Any]:
        fault = self.fault
        assert fault is not None and fault.cleared_at is not None
        cleared = fault.cleared_at
        first_after: dict[uuid.UUID, dt.datetime] = {}
        for step in self.fleet.rows(select(Step).where(Step.created_at > cleared).order_by(Step.created_at)):
            first_after.setdefault(step.task_id, step.created_at)
        moved: list[float | None] = []
        for task in tasks.values():
            if task.created_at >= cleared or (task.finished_at is not None and task.finished_at <= cleared):
                continue  # submitted after the fault, or ended before it was over
            when = [at for at in (first_after.get(task.id), task.finished_at) if at is not None]
            moved.append((min(when) - cleared).total_seconds() if when else None)  # None: never moved
        succeeded_after = [
            t.finished_at for t in tasks.values()
            if t.status == TaskStatus.SUCCEEDED and t.finished_at is not None and t.finished_at > fault.at
        ]  # fmt: skip
        ended = [t.finished_at for t in tasks.values() if t.finished_at is not None]

        def since_fault(at: dt.datetime | None) -> float | None:
            return None if at is None else round((at - fault.at).total_seconds(), 1)

        statuses: dict[str, int] = {}
        for task in tasks.values():
            key = task.status.value + (f"/{task.reason}" if task.status != TaskStatus.SUCCEEDED else "")
            statuses[key] = statuses.get(key, 0) + 1
        return {
            "scenario": self.name,
            "fault": fault.what,
            "outage_s": round((cleared - fault.at).total_seconds(), 1),
            # None: no task was left to move when the fault was over, or one never moved.
            "moving_again_s": None if not moved or None in moved else round(max(moved), 1),
            "first_success_s": since_fault(min(succeeded_after, default=None)),
            "all_ended_s": since_fault(max(ended)) if len(ended) == len(tasks) else None,
            "tasks": len(tasks),
            "statuses": statuses,
            "retried": sum(t.attempts > 1 for t in tasks.values()),
            "test_s": round(time.monotonic() - self.started, 1),
            "passed": failure is None,
            "failure": failure and failure[:500],
        }

    def _table(self) -> str:
        return "\n".join(
            f"  {t.id} {t.status} attempts={t.attempts} reason={t.reason} waiting={t.waiting}"
            for t in self.tasks().values()
        )
