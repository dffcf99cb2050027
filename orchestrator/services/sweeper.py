"""The sweeper: the database is the truth, the broker is a hint.

Run by ``phonefleet pool`` every few seconds. One ``sweep()``:

1. **Lost messages.** A task still ``queued`` and not claimed, created more than ``queued_grace_s``
   ago — and, for a task a worker re-queued after an infrastructure failure (``retry_at``: its
   message was sent with that delay), whose retry is more than ``queued_grace_s`` past due — gets
   its ``phonefleet.run_task`` message again — on its device profile's queue, chosen by
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
   (or ``claimed_at``) is older than ``stale_after_s`` (``pool.worker_lost_s``, as the worker's
   claim rule): its worker is lost. The lost run's lease is ended at once, reason ``worker_lost``
   (``end_leases_held_by``: the phone is reset now, not at the lease's expiry), in a transaction
   that first locks the task row as read — status, ``worker_id``, ``heartbeat_at`` — so a live
   worker's heartbeat since then wins (and a stale run's own heartbeats are refused, see
   ``worker/run/rows.py``). With ``attempts >= max_attempts`` (``tasks.max_infra_attempts``, as
   the worker's claim rule) the task is failed here, reason
   ``worker_lost``, by one conditional UPDATE fenced the same way, with a ``task.status`` event;
   otherwise it is re-enqueued (same broker check and back-off) and the worker's claim rule
   re-claims it. ``run`` makes this pass every ``lost_interval_s`` (a fraction of
   ``stale_after_s``), the whole sweep every ``interval_s``: its queries are index scans on the
   task's status and heartbeat, then on the few stale tasks' events.
3. **Quota waits.** A task its worker's claim left ``queued`` with ``waiting.kind = quota`` (its
   tenant was at a limit, ``orchestrator/db/quotas.py``) is not a lost message: pass 1 leaves it
   alone. Each sweep asks, per tenant with such tasks, how many it may start now (``task_room``)
   and sends that many of them again, oldest first, ``waiting`` back to ``queued`` before the send
   (so a failed send is pass 1's to repeat), less those it sent already that no worker claimed
   yet; tenant by tenant, so one tenant's backlog never hides another's waiting task. ``run``
   makes this pass on every tick, as pass 2. The claim checks the limits again, so a room read
   stale costs one more wait, never a task over the limit. An eval's task held back by its
   ``parallel`` goes by the eval's room instead (``eval_room``: ``parallel`` less its held tasks and
   those sent again and not yet claimed), within its tenant's.
4. **Expired sessions** (when given a ``SessionService``): active sessions past ``expires_at`` are
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

from device_pool.pool import RELEASED, Signal, end_leases_held_by
from orchestrator.db import (
    HELD_TASK_STATUSES,
    WORKER_LOST,
    Eval,
    Event,
    Task,
    TaskStatus,
    WaitingKind,
    utcnow,
)
from orchestrator.db.database import Database
from orchestrator.db.quotas import EVAL_ROOM_MESSAGE, eval_held_back, eval_room, task_room
from orchestrator.errors import BrokerUnavailable, DatabaseUnavailable
from orchestrator.queue import TaskQueue
from orchestrator.services.waiting import QUEUED_MESSAGE, set_queued_waiting

if TYPE_CHECKING:
    from orchestrator.services.sessions import SessionService

__all__ = ["REQUEUED", "SweepReport", "TaskSweeper"]

logger = logging.getLogger(__name__)

REQUEUED = "task.requeued"
QUOTA_ROOM_MESSAGE = "its tenant has room again; waiting for a worker to claim it"


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
        max_attempts: int = 3,
        batch: int = 100,
        sessions: SessionService | None = None,
        max_horizon_s: float = 3600.0,
        signal: Signal | None = None,
        quotas: Any = None,
    ) -> None:
        self.db = db
        self.quotas = quotas  # settings.quotas: the tenants' default limits
        self.signal = signal  # told when a lost run's lease ends (wakes the pool manager to reset)
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
        last_requeue = _last_requeue()
        backed_off = or_(
            last_requeue.c.at.is_(None), last_requeue.c.at < self._horizon_start(last_requeue.c.n, now)
        )
        async with self.db.transaction() as db_session:
            queued = (
                await db_session.execute(
                    select(Task.id, Task.tenant_id, Task.device_profile)
                    .outerjoin(last_requeue, last_requeue.c.task_id == Task.id)
                    .where(
                        Task.status == TaskStatus.QUEUED,
                        Task.claimed_at.is_(None),
                        Task.created_at < grace_before,
                        # A re-queued task's delayed message is not lost before its retry is due.
                        or_(Task.retry_at.is_(None), Task.retry_at < grace_before),
                        backed_off,
                        # A task held back by its tenant's quota waits for room (sweep_quota), not a re-send.
                        or_(
                            Task.waiting.is_(None),
                            Task.waiting["kind"].as_string() != WaitingKind.QUOTA.value,
                        ),
                    )
                    .order_by(Task.created_at)
                    .limit(self.batch)
                )
            ).all()
        waiting = await self._still_waiting(queued)
        for row in queued:
            if str(row.id) in waiting:
                report.waiting.append(row.id)
            elif await self._requeue(row, {"from": TaskStatus.QUEUED.value}):
                report.requeued.append(row.id)
        await self.sweep_lost(report, now)
        await self.sweep_quota(report)
        if self.sessions is not None:
            report.expired_sessions = await self.sessions.expire_due(now=now, limit=self.batch)
        return report

    async def sweep_lost(
        self, report: SweepReport | None = None, now: dt.datetime | None = None
    ) -> SweepReport:
        """The lost-workers part of a sweep (see the module docstring)."""
        report = SweepReport() if report is None else report
        now = now or utcnow()
        stale_before = now - dt.timedelta(seconds=self.stale_after_s)
        seen_at = func.coalesce(Task.heartbeat_at, Task.claimed_at)
        columns = (Task.id, Task.tenant_id, Task.device_profile, Task.status, Task.worker_id, Task.heartbeat_at,
                   Task.claimed_at, Task.attempts)  # fmt: skip
        async with self.db.transaction() as db_session:
            stale = (
                await db_session.execute(
                    select(*columns)
                    .where(
                        Task.status.in_(HELD_TASK_STATUSES), or_(seen_at.is_(None), seen_at < stale_before)
                    )
                    .order_by(Task.created_at)
                    .limit(self.batch)
                )
            ).all()
            resent: dict[uuid.UUID, Any] = {}
            if stale:
                last_requeue = _last_requeue([row.id for row in stale])
                resent = {row.task_id: row for row in (await db_session.execute(select(last_requeue))).all()}
        due: list[Any] = []
        for row in stale:
            if row.attempts >= self.max_attempts:
                if await self._fail_lost(row, now):
                    report.failed.append(row.id)
                continue
            await self._end_leases(row, now)
            last = resent.get(row.id)
            if last is None or last.at < now - dt.timedelta(seconds=self.horizon_s(last.n)):
                due.append(row)
        waiting = await self._still_waiting(due)
        for row in due:
            payload = {"from": row.status.value, "worker_id": row.worker_id, "attempts": row.attempts}
            if str(row.id) in waiting:
                report.waiting.append(row.id)
            elif await self._requeue(row, payload):
                report.requeued.append(row.id)
        if report.requeued or report.failed:
            logger.info("sweep done", extra={"requeued": len(report.requeued), "failed": len(report.failed)})
        return report

    async def sweep_quota(self, report: SweepReport | None = None) -> SweepReport:
        """The quota part of a sweep (see the module docstring): tasks sent again land in ``report.requeued``.

        Tenant by tenant, so one tenant's backlog never hides another's waiting task; a tenant's
        room is less the tasks already sent again and not yet claimed (no re-send churn)."""
        report = SweepReport() if report is None else report
        queued = Task.status == TaskStatus.QUEUED
        quota_wait = Task.waiting["kind"].as_string() == WaitingKind.QUOTA.value
        sent_again = Task.waiting["message"].as_string() == QUOTA_ROOM_MESSAGE
        due: list[Any] = []
        async with self.db.transaction() as db_session:
            tenants = (
                await db_session.scalars(
                    select(Task.tenant_id).where(queued, quota_wait).distinct().limit(self.batch)
                )
            ).all()
            for tenant in tenants:
                room = await task_room(db_session, tenant, self.quotas)
                if room is not None:
                    pending = await db_session.scalar(
                        select(func.count()).where(Task.tenant_id == tenant, queued, sent_again)
                    )
                    room = min(self.batch, room - (pending or 0))
                    if room <= 0:
                        continue
                # Tasks of an eval with a `parallel` go by the eval's room (below), not the tenant's alone.
                gated = Task.eval_id.in_(select(Eval.id).where(Eval.tenant_id == tenant, Eval.parallel.is_not(None)))
                rows = (await db_session.execute(
                    select(Task.id, Task.tenant_id, Task.device_profile)
                    .where(Task.tenant_id == tenant, queued, quota_wait, or_(Task.eval_id.is_(None), ~gated))
                    .order_by(Task.created_at)
                    .limit(self.batch if room is None else room)
                )).all()  # fmt: skip
                due.extend((row, QUOTA_ROOM_MESSAGE) for row in rows)
                room = None if room is None else room - len(rows)
                evals = (await db_session.scalars(
                    select(Task.eval_id).where(Task.tenant_id == tenant, queued, quota_wait, gated).distinct()
                    .limit(self.batch)
                )).all()  # fmt: skip
                for eval_id in evals:
                    mine = min(self.batch, await eval_room(db_session, eval_id) or 0, self.batch if room is None else room)
                    if mine <= 0:
                        continue
                    rows = (await db_session.execute(eval_held_back(eval_id, mine))).all()
                    due.extend((row, EVAL_ROOM_MESSAGE) for row in rows)
                    room = None if room is None else room - len(rows)
        for row, message in due:
            async with self.db.transaction(write=True) as db_session:
                moved = await set_queued_waiting(
                    db_session, row.tenant_id, row.id, WaitingKind.QUEUED, message, only_if=WaitingKind.QUOTA,
                )  # fmt: skip
            if moved is not None and await self._requeue(
                row, {"from": TaskStatus.QUEUED.value, "reason": "quota"}
            ):
                report.requeued.append(row.id)
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

    async def _end_leases(self, row: Any, now: dt.datetime) -> None:
        """End the lost run's leases, if its task row is still as read (locked until the commit)."""
        if row.worker_id is None:
            return
        async with self.db.transaction(write=True) as db_session:
            held = await db_session.scalar(select(Task.id).where(*_as_read(row)).with_for_update())
            ended = (
                [] if held is None else await end_leases_held_by(db_session, row.worker_id, now, WORKER_LOST)
            )
        if ended and self.signal is not None:
            await self.signal.notify(RELEASED)

    async def _fail_lost(self, row: Any, now: dt.datetime) -> bool:
        # Fenced on what was read: a heartbeat, claim, cancel or finish since then matches nothing.
        guard = _as_read(row)
        message = (
            f"its worker stopped heartbeating on attempt {row.attempts}; "
            f"not retried: no attempts left ({row.attempts} of {self.max_attempts})"
        )
        async with self.db.transaction(write=True) as db_session:
            result = await db_session.execute(
                update(Task)
                .where(and_(*guard))
                .values(
                    status=TaskStatus.FAILED,
                    reason=WORKER_LOST,
                    message=message,
                    finished_at=now,
                    waiting=None,
                )
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
            ended = (
                []
                if row.worker_id is None
                else await end_leases_held_by(db_session, row.worker_id, now, WORKER_LOST)
            )
        if ended and self.signal is not None:
            await self.signal.notify(RELEASED)
        logger.warning("task failed: worker lost", extra={"task_id": str(row.id), "attempts": row.attempts})
        return True

    async def run(
        self, interval_s: float, stop: asyncio.Event, *, lost_interval_s: float | None = None
    ) -> None:
        """Sweep every ``interval_s``, and look for lost workers every ``lost_interval_s`` (at most
        ``interval_s``), until ``stop`` is set; errors are logged, never fatal."""
        tick_s = interval_s if lost_interval_s is None else min(lost_interval_s, interval_s)
        next_full = 0.0
        loop = asyncio.get_running_loop()
        while not stop.is_set():
            try:
                if loop.time() >= next_full:
                    next_full = loop.time() + interval_s
                    await self.sweep()
                else:
                    await self.sweep_lost()
                    await self.sweep_quota()  # a freed slot is used within a tick, not a whole interval
            except DatabaseUnavailable as exc:
                logger.warning("sweep skipped: %s", exc)
            except Exception:
                logger.exception("sweep failed")
            try:
                await asyncio.wait_for(stop.wait(), tick_s)
            except TimeoutError:
                pass


def _last_requeue(task_ids: list[uuid.UUID] | None = None) -> Any:
    """Per task: when it was last re-sent (``at``) and how often (``n``); only ``task_ids``' if given."""
    query = select(Event.task_id, func.max(Event.created_at).label("at"), func.count(Event.id).label("n"))
    query = query.where(Event.type == REQUEUED, Event.task_id.is_not(None))
    if task_ids is not None:
        query = query.where(Event.task_id.in_(task_ids))  # the (task_id, id) index: a few rows each
    return query.group_by(Event.task_id).subquery()


def _as_read(row: Any) -> list[Any]:
    """The task row still as ``row`` read it: a heartbeat, claim, cancel or finish since then differs."""
    return [
        Task.id == row.id,
        Task.status == row.status,
        Task.worker_id.is_(None) if row.worker_id is None else Task.worker_id == row.worker_id,
        Task.heartbeat_at.is_(None) if row.heartbeat_at is None else Task.heartbeat_at == row.heartbeat_at,
    ]
