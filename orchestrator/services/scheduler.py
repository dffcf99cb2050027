"""The scheduler: makes each schedule's runs when they are due (``phonefleet pool`` runs it).

Safe in several processes at once: a scheduler owns a due time only by moving the schedule's
``next_due_at`` on in one UPDATE conditional on the value it read (and on the schedule not being
paused); the run's task row is inserted in the same transaction, and ``tasks`` is unique on
(schedule_id, due_at). On PostgreSQL the loser's UPDATE waits for the winner's row lock, then
matches nothing; on SQLite the write transactions take turns (BEGIN IMMEDIATE).

Each pass, in order:

1. the end of each schedule's latest run is counted once: a failed or timed-out run adds one to
   ``consecutive_failures`` (a ``schedule.failing`` event), a success sets it to 0 (a cancel leaves
   it), and at
   ``schedules.max_consecutive_failures`` the schedule pauses itself (``schedule.paused``,
   ``paused_reason`` "failures");
2. a run queued behind its previous one (``overlap`` = queue) starts once that one ended;
3. each due schedule: a due time reached more than ``schedules.misfire_grace_s`` late was missed
   (no scheduler ran): ``catch_up`` = skip makes no run, run_once one run for all that were missed;
   either way the next due time is the first in the future. A due time on time makes a run, unless
   the previous run has not ended: ``overlap`` = skip makes none (``schedule.skipped``), queue
   makes it wait (at most one waits; a due time while one waits is skipped).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from typing import Any

from sqlalchemy import insert, or_, select, update
from sqlalchemy.exc import IntegrityError

from orchestrator.db import (
    FAILED_TASK_STATUSES,
    CatchUp,
    DbSession,
    Event,
    Overlap,
    PersonalPhone,
    Schedule,
    Task,
    TaskStatus,
    utcnow,
)
from orchestrator.db.database import Database
from orchestrator.errors import DatabaseUnavailable
from orchestrator.notifier import EventSignal
from orchestrator.queue import TaskQueue
from orchestrator.services.personal_phones import PHONE_DELETED, pause_schedules_on
from orchestrator.services.schedules import cadence_of
from orchestrator.services.task_creation import created_event, enqueue_created, new_task
from orchestrator.settings import ScheduleSettings

__all__ = ["FAILING", "PAUSED", "SKIPPED", "Scheduler"]

logger = logging.getLogger(__name__)

FAILING, PAUSED, SKIPPED = "schedule.failing", "schedule.paused", "schedule.skipped"
_FINAL = tuple(status for status in TaskStatus if status.is_final)
_BATCH = 100  # schedules looked at per step of a pass; the rest wait for the next pass


class Scheduler:
    """Finds due schedules and makes their runs; ``run`` loops until told to stop."""

    def __init__(
        self,
        db: Database,
        queue: TaskQueue,
        settings: ScheduleSettings,
        *,
        notifier: EventSignal | None = None,
        name: str = "scheduler",
    ) -> None:
        self.db = db
        self.queue = queue
        self.settings = settings
        self.notifier = notifier
        self.name = name  # in logs: which scheduler process claimed what

    async def run(self, stop: asyncio.Event) -> None:
        """A pass every ``schedules.poll_s`` until ``stop`` is set; a database outage is logged and
        the next pass tries again."""
        logger.info("scheduler started", extra={"scheduler": self.name, "poll_s": self.settings.poll_s})
        while not stop.is_set():
            try:
                await self.tick()
            except DatabaseUnavailable as exc:
                logger.warning("scheduler pass failed; trying again", extra={"error": exc.message})
            except Exception:  # a bug in one pass must not end the pool's scheduling for good
                logger.exception("scheduler pass failed; trying again")
            try:
                await asyncio.wait_for(stop.wait(), self.settings.poll_s)
            except TimeoutError:
                pass

    async def tick(self, now: dt.datetime | None = None) -> list[Task]:
        """One pass (the module docstring's three steps); returns the runs it made."""
        now = now or utcnow()
        made: list[Task] = []
        for schedule_id, run_id, status in await self._ended_runs():
            await self._count(schedule_id, run_id, status)
        for schedule_id in await self._waiting_runs():
            made.extend(await self._enqueued(await self._start_queued(schedule_id)))
        for schedule_id in await self._due(now):
            try:
                made.extend(await self._enqueued(await self._fire(schedule_id, now)))
            except IntegrityError:
                # Only if something else already made a run for this due time (the claim makes
                # that impossible among schedulers): nothing is lost, the transaction rolled back.
                logger.warning("a run for this due time exists already", extra={"schedule_id": str(schedule_id)})
        return made

    async def _enqueued(self, runs: list[Task]) -> list[Task]:
        # Each run right after its commit: a pass that fails later leaves none unsent (and one the
        # broker refused stays queued for the sweeper, as any task does).
        for task in runs:
            await enqueue_created(self.db, self.queue, self.notifier, task)
        return runs

    # --- what to look at -------------------------------------------------------------------------

    async def _ended_runs(self) -> list[tuple[uuid.UUID, uuid.UUID, TaskStatus]]:
        query = (
            select(Schedule.id, Task.id, Task.status)
            .join(Task, Task.id == Schedule.last_run_id)
            .where(
                Task.status.in_(_FINAL),
                or_(Schedule.counted_run_id.is_(None), Schedule.counted_run_id != Schedule.last_run_id),
            )
            .limit(_BATCH)
        )
        async with self.db.transaction() as db_session:
            return [(row[0], row[1], row[2]) for row in await db_session.execute(query)]

    async def _waiting_runs(self) -> list[uuid.UUID]:
        query = (
            select(Schedule.id)
            .outerjoin(Task, Task.id == Schedule.last_run_id)
            .where(
                Schedule.queued_due_at.is_not(None),
                Schedule.paused.is_(False),
                or_(Task.id.is_(None), Task.status.in_(_FINAL)),
            )
            .limit(_BATCH)
        )
        async with self.db.transaction() as db_session:
            return list(await db_session.scalars(query))

    async def _due(self, now: dt.datetime) -> list[uuid.UUID]:
        query = (
            select(Schedule.id)
            .where(Schedule.paused.is_(False), Schedule.next_due_at <= now)
            .order_by(Schedule.next_due_at)
            .limit(_BATCH)
        )
        async with self.db.transaction() as db_session:
            return list(await db_session.scalars(query))

    # --- the writes, each one transaction guarded by what it read ----------------------------------

    async def _count(self, schedule_id: uuid.UUID, run_id: uuid.UUID, status: TaskStatus) -> None:
        """Count the end of the schedule's latest run, once (whichever scheduler gets there first)."""
        if await self._counted(schedule_id, run_id, status) and self.notifier is not None:
            self.notifier.notify()  # its events are committed: wake the event readers

    async def _counted(self, schedule_id: uuid.UUID, run_id: uuid.UUID, status: TaskStatus) -> bool:
        async with self._write() as db_session:
            schedule = await db_session.get(Schedule, schedule_id)
            if schedule is None or schedule.last_run_id != run_id or schedule.counted_run_id == run_id:
                return False
            failed = status in FAILED_TASK_STATUSES
            # A cancel is a person's choice: neither the schedule's failure nor its success.
            failures = schedule.consecutive_failures + 1 if failed else (
                schedule.consecutive_failures if status == TaskStatus.CANCELLED else 0)  # fmt: skip
            most = self.settings.max_consecutive_failures
            pause = failed and failures >= most and not schedule.paused
            values: dict[str, Any] = {"counted_run_id": run_id, "consecutive_failures": failures}
            if pause:
                values.update(paused=True, paused_reason="failures")
            counted = await db_session.execute(
                update(Schedule)
                .where(Schedule.id == schedule_id, Schedule.last_run_id == run_id,
                       or_(Schedule.counted_run_id.is_(None), Schedule.counted_run_id != run_id))
                .values(**values, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )  # fmt: skip
            if not counted.rowcount or not failed:
                return False
            about = {"schedule_id": str(schedule_id), "run_id": str(run_id), "status": status.value}
            await add_schedule_event(db_session, schedule.tenant_id, FAILING,
                             {**about, "consecutive_failures": failures, "max_consecutive_failures": most})  # fmt: skip
            log = {"schedule_id": str(schedule_id), "task_id": str(run_id), "failures": failures}
            if pause:
                await add_schedule_event(db_session, schedule.tenant_id, PAUSED, {**about, "reason": "failures"})
                logger.warning("schedule paused: its runs keep failing", extra=log)
            else:
                logger.info("a schedule's run failed", extra=log)
            return True

    async def _start_queued(self, schedule_id: uuid.UUID) -> list[Task]:
        """Start the run that waited for the previous one to end (``overlap`` = queue)."""
        async with self._write() as db_session:
            schedule = await db_session.get(Schedule, schedule_id)
            if schedule is None or schedule.queued_due_at is None or schedule.paused:
                return []
            if not await _ended(db_session, schedule.last_run_id):
                return []
            if await _phone_gone(db_session, schedule):
                return []
            due = schedule.queued_due_at
            task = _run_of(schedule, due)
            claimed = await db_session.execute(
                update(Schedule)
                .where(Schedule.id == schedule_id, Schedule.queued_due_at == due, Schedule.paused.is_(False),
                       _same(Schedule.last_run_id, schedule.last_run_id))
                .values(queued_due_at=None, last_run_id=task.id, updated_at=utcnow())
                .execution_options(synchronize_session=False)
            )  # fmt: skip
            if not claimed.rowcount:
                return []
            await _add_run(db_session, task)
        self._log_run(task, "a queued run started: the previous one ended")
        return [task]

    async def _fire(self, schedule_id: uuid.UUID, now: dt.datetime) -> list[Task]:
        """Claim the schedule's due time and act on it (run, skip, or queue)."""
        async with self._write() as db_session:
            schedule = await db_session.get(Schedule, schedule_id)
            if schedule is None or schedule.paused or schedule.next_due_at > now:
                return []
            if await _phone_gone(db_session, schedule):
                return []
            due = schedule.next_due_at
            try:
                latest, following = cadence_of(schedule).latest_until(due, now)
            except ValueError as exc:  # a cron expression with no further fire ("0 0 30 2 *")
                logger.warning("schedule is never due again; pausing it",
                               extra={"schedule_id": str(schedule_id), "error": str(exc)})  # fmt: skip
                schedule.paused, schedule.paused_reason = True, "never_due"
                return []
            missed = (now - due).total_seconds() > self.settings.misfire_grace_s
            values: dict[str, Any] = {"next_due_at": following, "last_due_at": latest, "updated_at": utcnow()}
            task: Task | None = None
            skipped: str | None = None
            if missed and schedule.catch_up == CatchUp.SKIP:
                skipped = "missed"
            elif not await _ended(db_session, schedule.last_run_id):
                if schedule.overlap == Overlap.QUEUE and schedule.queued_due_at is None:
                    values["queued_due_at"] = latest
                else:
                    skipped = "overlap"
            else:
                task = _run_of(schedule, latest)
                values.update(last_run_id=task.id, queued_due_at=None)
            claimed = await db_session.execute(
                update(Schedule)
                .where(Schedule.id == schedule_id, Schedule.next_due_at == due, Schedule.paused.is_(False))
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            if not claimed.rowcount:
                return []  # another scheduler claimed this due time first
            log = {"schedule_id": str(schedule_id), "due_at": latest.isoformat(), "scheduler": self.name}
            if task is not None:
                await _add_run(db_session, task)
            elif skipped is not None:
                payload = {"schedule_id": str(schedule_id), "due_at": latest.isoformat(), "reason": skipped}
                await add_schedule_event(db_session, schedule.tenant_id, SKIPPED, payload)
                logger.info("schedule skipped a due time (%s)", skipped, extra=log)
            else:
                logger.info("schedule's run waits for the previous one to end", extra=log)
        if skipped is not None and self.notifier is not None:
            self.notifier.notify()  # the schedule.skipped event is committed: wake the event readers
        if task is None:
            return []
        self._log_run(task, "schedule's run made (late: catch_up run_once)" if missed else "schedule's run made")
        return [task]

    def _log_run(self, task: Task, what: str) -> None:
        logger.info(what, extra={"schedule_id": str(task.schedule_id), "task_id": str(task.id),
                                 "due_at": task.due_at.isoformat() if task.due_at else None,
                                 "scheduler": self.name})  # fmt: skip

    def _write(self) -> Any:
        return self.db.transaction(write=True)


def _run_of(schedule: Schedule, due: dt.datetime) -> Task:
    return new_task(
        tenant_id=schedule.tenant_id, created_by=schedule.created_by, fields=schedule.task,
        schedule_id=schedule.id, due_at=due,
    )  # fmt: skip


async def _add_run(db_session: DbSession, task: Task) -> None:
    db_session.add(task)
    await db_session.flush()  # the task before its event (the event's foreign key)
    db_session.add(created_event(task))


async def _ended(db_session: DbSession, run_id: uuid.UUID | None) -> bool:
    """True when there is no previous run, or it has ended."""
    if run_id is None:
        return True
    status = await db_session.scalar(select(Task.status).where(Task.id == run_id))
    return status is None or status.is_final


async def _phone_gone(db_session: DbSession, schedule: Schedule) -> bool:
    """Whether the schedule's task names a personal phone that was deleted (or never was): the
    schedule is then paused (``pause_schedules_on``) and makes no run. Deleting a phone pauses its
    schedules already; this catches a schedule resumed after, or written before that rule."""
    named = schedule.task.get("personal_phone_id")
    if named is None:
        return False
    phone_id = uuid.UUID(str(named))
    alive = await db_session.scalar(
        select(PersonalPhone.id).where(PersonalPhone.id == phone_id, PersonalPhone.tenant_id == schedule.tenant_id,
                                       PersonalPhone.deleted_at.is_(None))
    )  # fmt: skip
    if alive is not None:
        return False
    await pause_schedules_on(db_session, schedule.tenant_id, [phone_id])
    logger.warning("schedule names a deleted personal phone; paused, no run made",
                   extra={"schedule_id": str(schedule.id), "reason": PHONE_DELETED})  # fmt: skip
    return True


def _same(column: Any, value: uuid.UUID | None) -> Any:
    return column.is_(None) if value is None else column == value


async def add_schedule_event(db_session: DbSession, tenant_id: uuid.UUID, type_: str, payload: dict[str, Any]) -> None:
    # No task_id: the event is the schedule's (its payload names the run, where there is one).
    await db_session.execute(
        insert(Event).values(tenant_id=tenant_id, task_id=None, type=type_, payload=payload, created_at=utcnow())
    )
