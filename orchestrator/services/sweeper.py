"""The sweeper: the database is the truth, the broker is a hint.

Run by ``phonefleet pool`` every few seconds. One ``sweep()``:

1. **Lost messages.** A task still ``queued`` and never claimed, created more than ``queued_grace_s``
   ago, gets its ``phonefleet.run_task`` message again — on its device profile's queue, chosen by
   ``orchestrator.queue.queue_for`` as at submission — and a ``task.requeued`` event. At most one
   message per task stays outstanding (a slow fleet is not flooded with duplicates):

   - **The broker is asked first** (Redis): a task whose message still waits in its queue has not
     lost it, so nothing is sent (``SweepReport.waiting``).
   - **The events are the back-off**: a task re-sent ``n`` times (``n`` ``task.requeued`` events)
     is re-sent again only when the last is older than ``queued_grace_s * 2**n``, at most
     ``max_horizon_s``. This is what bounds duplicates where the broker cannot be asked (the SQLite
     broker), or where a message was taken by a worker that holds it unacknowledged.

   The event is written after the broker took the message, so a broker failure (logged) is retried
   by the next sweep.
2. **Lost workers.** A task in a held status (``leasing`` … ``user_control``) whose ``heartbeat_at``
   (or ``claimed_at``) is older than ``stale_after_s`` (the lease TTL, as the worker's claim rule):
   with ``attempts >= max_attempts`` it is failed here, reason ``worker_lost``, by one conditional
   UPDATE fenced on the status, ``worker_id`` and ``heartbeat_at`` it read (a live worker's
   concurrent heartbeat wins), with a ``task.status`` event; otherwise it is re-enqueued (same
   broker check and back-off) and the worker's claim rule re-claims it.
3. **Expired sessions** (when given a ``SessionService``): active sessions past ``expires_at`` are
   marked ``expired`` and their phones released (``SessionService.expire_due``).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlalchemy import ColumnElement, and_, case, func, insert, or_, select, update

from orchestrator.db import HELD_TASK_STATUSES, WORKER_LOST, Event, Task, TaskStatus, WaitingKind, utcnow
from orchestrator.db.database import Database
from orchestrator.errors import BrokerUnavailable, DatabaseUnavailable
from orchestrator.queue import TaskQueue
from orchestrator.services.waiting import QUEUED_MESSAGE, set_queued_waiting

if TYPE_CHECKING:
    from orchestrator.services.sessions import SessionService

__all__ = ["REQUEUED", "SweepReport", "TaskSweeper"]

logger = logging.getLogger(__name__)

REQUEUED = "task.requeued"


@dataclass
class SweepReport:
    """What one sweep did: task ids re-enqueued, task ids failed ``worker_lost``, session ids expired;
    task ids due for a re-send whose message still waits in the broker (not re-sent)."""

    requeued: list[uuid.UUID] = field(default_factory=list)
    waiting: list[uuid.UUID] = field(default_factory=list)
    failed: list[uuid.UUID] = field(default_factory=list)
    expired_sessions: list[uuid.UUID] = field(default_factory=list)


class TaskSweeper:
    """Re-enqueues tasks whose message was lost and fails over tasks whose worker died."""

    def __init__(
        self,
        db: Database,
        queue: TaskQueue,
        *,
        queued_grace_s: float = 30.0,
        stale_after_s: float,
        max_attempts: int = 2,
        batch: int = 100,
        sessions: SessionService | None = None,
        max_horizon_s: float = 3600.0,
    ) -> None:
        self.db = db
        self.sessions = sessions
        self.queue = queue
        self.queued_grace_s = queued_grace_s
        self.stale_after_s = stale_after_s
        self.max_attempts = max_attempts
        self.batch = batch
        self.max_horizon_s = max(max_horizon_s, queued_grace_s)

    async def sweep(self) -> SweepReport:
        """One pass over lost messages and lost workers."""
        report = SweepReport()
        now = utcnow()
        grace_before = now - dt.timedelta(seconds=self.queued_grace_s)
        stale_before = now - dt.timedelta(seconds=self.stale_after_s)
        last_requeue = (
            select(Event.task_id, func.max(Event.created_at).label("at"), func.count(Event.id).label("n"))
            .where(Event.type == REQUEUED, Event.task_id.is_not(None))
            .group_by(Event.task_id)
            .subquery()
        )
        backed_off = or_(last_requeue.c.at.is_(None), last_requeue.c.at < self._horizon_start(last_requeue.c.n, now))
        seen_at = func.coalesce(Task.heartbeat_at, Task.claimed_at)
        async with self.db.transaction() as db_session:
            queued = (
                await db_session.execute(
                    select(Task.id, Task.tenant_id, Task.device_profile)
                    .outerjoin(last_requeue, last_requeue.c.task_id == Task.id)
                    .where(
                        Task.status == TaskStatus.QUEUED,
                        Task.claimed_at.is_(None),
                        Task.created_at < grace_before,
                        backed_off,
                    )
                    .order_by(Task.created_at)
                    .limit(self.batch)
                )
            ).all()
            stale = (
                await db_session.execute(
                    select(
                        Task.id,
                        Task.tenant_id,
                        Task.device_profile,
                        Task.status,
                        Task.worker_id,
                        Task.heartbeat_at,
                        Task.claimed_at,
                        Task.attempts,
                        last_requeue.c.at,
                        last_requeue.c.n,
                    )
                    .outerjoin(last_requeue, last_requeue.c.task_id == Task.id)
                    .where(Task.status.in_(HELD_TASK_STATUSES), or_(seen_at.is_(None), seen_at < stale_before))
                    .order_by(Task.created_at)
                    .limit(self.batch)
                )
            ).all()
        lost = [row for row in stale if row.attempts >= self.max_attempts]
        due = [row for row in stale if row.attempts < self.max_attempts
               and (row.at is None or row.at < now - dt.timedelta(seconds=self.horizon_s(row.n)))]  # fmt: skip
        waiting = await self._still_waiting([*queued, *due])
        for row in queued:
            if str(row.id) in waiting:
                report.waiting.append(row.id)
            elif await self._requeue(row, {"from": TaskStatus.QUEUED.value}):
                report.requeued.append(row.id)
        for row in lost:
            if await self._fail_lost(row, now):
                report.failed.append(row.id)
        for row in due:
            payload = {"from": row.status.value, "worker_id": row.worker_id, "attempts": row.attempts}
            if str(row.id) in waiting:
                report.waiting.append(row.id)
            elif await self._requeue(row, payload):
                report.requeued.append(row.id)
        if report.requeued or report.failed:
            logger.info("sweep done", extra={"requeued": len(report.requeued), "failed": len(report.failed)})
        if self.sessions is not None:
            report.expired_sessions = await self.sessions.expire_due(now=now, limit=self.batch)
        return report

    def horizon_s(self, resends: int | None) -> float:
        """How old the last of ``resends`` re-sends must be before the next: doubling, capped."""
        if not resends:
            return self.queued_grace_s
        return min(self.queued_grace_s * 2.0 ** min(resends, 64), self.max_horizon_s)

    def _horizon_start(self, resends: ColumnElement[int], now: dt.datetime) -> ColumnElement[dt.datetime]:
        """``now - horizon_s(resends)`` in SQL: one CASE branch per doubling below the cap."""
        branches = [(resends == 0, now - dt.timedelta(seconds=self.queued_grace_s))]  # (never: n >= 1)
        n = 1
        while self.horizon_s(n) < self.max_horizon_s:
            branches.append((resends == n, now - dt.timedelta(seconds=self.horizon_s(n))))
            n += 1
        return case(*branches, else_=now - dt.timedelta(seconds=self.max_horizon_s))

    async def _still_waiting(self, rows: list[Any]) -> set[str]:
        """Ids among ``rows`` whose message waits in the broker (Redis only; else none are known)."""
        if not rows:
            return set()
        try:
            waiting = await self.queue.waiting_run_tasks([row.device_profile for row in rows])
        except BrokerUnavailable as exc:
            # The re-sends will likely fail too, and the next sweep asks again.
            logger.warning("could not list the broker's queues", extra={"error": str(exc)})
            return set()
        return waiting or set()

    async def _requeue(self, row: Any, payload: dict[str, Any]) -> bool:
        task_id, tenant_id = row.id, row.tenant_id
        try:
            # The queue of the task's device profile, as at submission (queue_for decides both).
            await self.queue.enqueue_run_task(task_id, row.device_profile)
        except BrokerUnavailable as exc:
            # No event: the next sweep tries again.
            logger.warning(
                "re-enqueue failed; next sweep retries", extra={"task_id": str(task_id), "error": str(exc)}
            )
            return False
        # After the broker took it: a lost event only means one more (harmless) duplicate later.
        async with self.db.transaction(write=True) as db_session:
            await db_session.execute(
                insert(Event).values(
                    tenant_id=tenant_id, task_id=task_id, type=REQUEUED, payload=payload, created_at=utcnow()
                )
            )
            # The broker took it: a task that said broker_unavailable waits in the queue again.
            await set_queued_waiting(
                db_session, tenant_id, task_id, WaitingKind.QUEUED, QUEUED_MESSAGE,
                only_if=WaitingKind.BROKER_UNAVAILABLE,
            )  # fmt: skip
        logger.info("task re-enqueued", extra={"task_id": str(task_id), **payload})
        return True

    async def _fail_lost(self, row: Any, now: dt.datetime) -> bool:
        # Fenced on what was read: a heartbeat, claim, cancel or finish since then matches nothing.
        guard = [
            Task.id == row.id,
            Task.status == row.status,
            Task.worker_id.is_(None) if row.worker_id is None else Task.worker_id == row.worker_id,
            Task.heartbeat_at.is_(None)
            if row.heartbeat_at is None
            else Task.heartbeat_at == row.heartbeat_at,
        ]
        message = f"its worker stopped heartbeating on attempt {row.attempts} of {row.attempts}"
        async with self.db.transaction(write=True) as db_session:
            result = await db_session.execute(
                update(Task)
                .where(and_(*guard))
                .values(status=TaskStatus.FAILED, reason=WORKER_LOST, message=message, finished_at=now, waiting=None)
                .returning(Task.id)
                .execution_options(synchronize_session=False)
            )
            if result.scalar_one_or_none() is None:
                return False
            payload = {"from": row.status.value, "to": TaskStatus.FAILED.value, "reason": WORKER_LOST,
                       "worker_id": row.worker_id, "by": "sweeper", "waiting": None}  # fmt: skip
            await db_session.execute(
                insert(Event).values(
                    tenant_id=row.tenant_id,
                    task_id=row.id,
                    type="task.status",
                    payload=payload,
                    created_at=now,
                )
            )
        logger.warning("task failed: worker lost", extra={"task_id": str(row.id), "attempts": row.attempts})
        return True

    async def run(self, interval_s: float, stop: asyncio.Event) -> None:
        """Sweep every ``interval_s`` until ``stop`` is set; errors are logged, never fatal."""
        while not stop.is_set():
            try:
                await self.sweep()
            except DatabaseUnavailable as exc:
                logger.warning("sweep skipped: %s", exc)
            except Exception:
                logger.exception("sweep failed")
            try:
                await asyncio.wait_for(stop.wait(), interval_s)
            except TimeoutError:
                pass
