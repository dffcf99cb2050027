"""The task row as a run changes it: claim, status, waiting, steps, heartbeat, finish.

Every change is one conditional UPDATE (fenced on ``worker_id``, so a run that lost its claim
cannot overwrite its successor) plus one ``events`` row in the same transaction (the outbox).

The claim rule (``claim``), in one conditional UPDATE:

- ``queued`` → ``leasing`` (worker_id, claimed_at, heartbeat_at, attempts + 1);
- a held status (``leasing``, ``running``, waiting…) whose ``heartbeat_at`` is older than
  ``stale_s`` (``pool.worker_lost_s``): its worker is lost, an infrastructure end. Re-claimed and
  run again (with a ``task.retrying`` event) while ``attempts < max_attempts``
  (``tasks.max_infra_attempts``) and the retry rule after acting allows it (``retry_refusal``);
  otherwise → ``failed`` with reason ``worker_lost``. Either way the lost run's lease is ended in
  the same transaction (``end_leases_held_by``, reason ``worker_lost``), so its phone is reset now
  rather than when the lease expires;
- ``queued`` but its tenant at a limit (``orchestrator/db/quotas.py``, counted in the claim's
  transaction with the tenant's row locked): not claimed; the task stays ``queued`` with
  ``waiting.kind = quota`` naming the limit, for the sweeper's quota pass to send again;
- anything else (claimed by a live worker, cancelled, finished): nothing — a duplicate delivery.

A live run cannot be taken for lost: it stamps ``heartbeat_at`` every ``pool.worker_heartbeat_s``
(a third of ``stale_s`` at most), ``heartbeat`` refuses a stamp once the row is stale (past that
moment the task is its successor's, as a lease past its expiry is the reaper's), and the watcher
stops a run that has not stamped for ``stale_s`` less one beat (``hooks.Watcher``).

``requeue`` ends an attempt the infrastructure cut short without ending the task: ``queued`` again
(the holder, claim time and device cleared; ``attempts`` kept, the next claim counts on), ``waiting``
= ``retrying``, ``retry_at`` = when the next attempt is due, a ``task.status`` and a
``task.retrying`` event (naming the phone to avoid when the phone was at fault: the next claim reads
them back, ``Claim.avoid_devices``). The caller sends the delayed message.

``waiting`` (why the task is not moving; ``orchestrator.db.WaitingKind``) is written with the change
that starts or ends the wait: cleared by the claim, every status change and the finish (their
``task.status`` events carry the new value), set alone by ``set_waiting`` (a ``task.waiting`` event).
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import and_, func, insert, or_, select, update

from device_pool.pool.leases import end_leases_held_by
from orchestrator.db import (
    CANCEL_REQUESTED,
    HELD_TASK_STATUSES,
    RETRYING_EVENT,
    WAITING_EVENT,
    WORKER_LOST,
    DbSession,
    Event,
    PersonalPhone,
    Step,
    Task,
    TaskStatus,
    WaitingKind,
    utcnow,
    waiting,
)
from orchestrator.db.database import Database
from orchestrator.db.quotas import (
    EVAL_ROOM_MESSAGE,
    eval_held_back,
    eval_refusal,
    eval_room,
    eval_wait_message,
)
from orchestrator.db.quotas import refusal as quota_refusal
from orchestrator.db.steps import AGENT, USER, insert_step
from orchestrator.encryption import Cipher
from orchestrator.notifier import EventSignal
from worker.agent.actions import ACTING

__all__ = [
    "CONFIRMATION_REQUESTED",
    "SUBGOAL_EVENT",
    "TAKEOVER_REQUESTED",
    "Claim",
    "TaskRow",
    "TaskRows",
    "clock",
    "retry_refusal",
]

logger = logging.getLogger(__name__)


_CLAIM_COLUMNS = (
    Task.tenant_id, Task.instruction, Task.device_profile, Task.max_steps, Task.timeout_s, Task.model,
    Task.attempts, Task.retry_after_acting, Task.max_tries,
    Task.attempts, Task.retry_after_acting, Task.personal_phone_id, Task.subgoals, Task.on_step_failure,
    Task.allowed_apps,
    Task.evaluation,
)  # fmt: skip

# The events of a sensitive step: the agent asked for a confirmation or a takeover (the run's hooks
# write these two), or a person took control (the API writes ``task.takeover``).
CONFIRMATION_REQUESTED = "task.confirmation_requested"
TAKEOVER_REQUESTED = "task.takeover_requested"
# A task chain's subgoal moved (started, ended, skipped): its object as ``tasks.subgoals`` holds it.
SUBGOAL_EVENT = "task.subgoal"
_SENSITIVE_EVENTS = (CONFIRMATION_REQUESTED, TAKEOVER_REQUESTED, "task.takeover")


def clock(when: dt.datetime) -> str:
    """A moment for a person: UTC, to the second."""
    return when.astimezone(dt.UTC).strftime("%H:%M:%S UTC")


def retry_refusal(retry_after_acting: bool | None, *, acted: bool, sensitive: bool) -> str | None:
    """Why a task whose attempt the infrastructure cut short may not be run again; None: it may.

    A task that has not acted on the phone is always retried. One that has is retried when its
    ``retry_after_acting`` says so, or, left null, when it made no sensitive step.
    """
    if not (acted or sensitive) or retry_after_acting is True:
        return None
    if retry_after_acting is False:
        return "it had acted on the phone and retry_after_acting is false"
    if sensitive:
        return "it had acted on the phone and made a sensitive step (a confirmation or a person's takeover)"
    return None


@dataclass(frozen=True)
class Claim:
    """A task this run now holds (status ``leasing``)."""

    task_id: uuid.UUID
    tenant_id: uuid.UUID
    instruction: str
    device_profile: dict[str, Any] | str | None  # an object to match, or a named profile
    max_steps: int
    timeout_s: int
    model: str | None
    attempts: int
    reclaimed: bool  # its previous worker's heartbeat had gone stale
    ended_leases: int = 0  # the lost run's leases this claim ended (their phones are resetting)
    # The index after a dead attempt's steps (they are kept). Informational: each step takes the
    # task's next index itself (orchestrator/db/steps.py), as a person's steps take indexes too.
    first_step: int = 0
    retry_after_acting: bool | None = None  # the task's field (retry_refusal)
    max_tries: int = 1  # the agent's tries on this attempt's phone (drive.py, "Tries")
    personal_phone_id: uuid.UUID | None = None  # run on this personal phone's data (docs/personal-phones.md)
    # Phones an earlier attempt failed on (their task.retrying events): this attempt avoids them.
    avoid_devices: tuple[uuid.UUID, ...] = ()
    # A task chain's subgoals, in order (empty: no chain), and what a failed one does (chain.py).
    subgoals: tuple[str, ...] = ()
    on_step_failure: str = "stop"
    # The apps the task may use and those its personal phone allows (None: any), for AppPolicy.of.
    allowed_apps: list[str] | None = None
    phone_allowed_apps: list[str] | None = None
    # An eval's task: the template to evaluate beside the agent (worker/eval/evaluation.py).
    evaluation: dict[str, Any] | None = None


@dataclass(frozen=True)
class TaskRow:
    """What the watcher reads each tick."""

    status: TaskStatus
    worker_id: str | None
    result: dict[str, Any]


class TaskRows:
    """Statements on one task's row for the run holding it as ``worker_id``."""

    def __init__(
        self, db: Database, task_id: uuid.UUID, worker_id: str, *, notifier: EventSignal | None = None
    ) -> None:
        self.db = db
        self.task_id = task_id
        self.worker_id = worker_id
        self.tenant_id: uuid.UUID | None = None
        self.status: TaskStatus | None = None  # as this run last wrote it
        self.stale_s: float | None = None  # the claim's staleness rule; heartbeats past it are refused
        self.waiting: dict[str, Any] | None = None  # as this run last wrote it
        self.notifier = notifier  # told after each commit that wrote events (a hint to event readers)
        # An eval's tasks its end moved back to ``queued`` (their ids): their messages to send.
        self.handed_on: list[uuid.UUID] = []

    @asynccontextmanager
    async def _written(self, *, write: bool = False) -> AsyncIterator[DbSession]:
        """A transaction that may write events; once it has committed, event readers are woken."""
        async with self.db.transaction(write=write) as db_session:
            yield db_session
        if self.notifier is not None:
            self.notifier.notify()

    async def claim(self, *, stale_s: float, max_attempts: int, quotas: Any = None) -> Claim | None:
        """Claim the task (see the module docstring); None when there is nothing to run, or when
        its tenant is at a limit of ``quotas`` (``settings.quotas``): the task stays ``queued`` with
        ``waiting.kind = quota`` naming the limit, and the sweeper's quota pass sends it again once
        the tenant has room."""
        now = utcnow()
        stale_before = now - dt.timedelta(seconds=stale_s)
        self.stale_s = stale_s
        async with self._written(write=True) as db_session:
            seen = (
                await db_session.execute(
                    select(
                        Task.status,
                        Task.heartbeat_at,
                        Task.attempts,
                        Task.worker_id,
                        Task.retry_after_acting,
                        Task.tenant_id,
                        Task.waiting,
                        Task.eval_id,
                    ).where(Task.id == self.task_id)
                )
            ).first()
            if seen is None:
                logger.warning("no such task; message dropped")
                return None
            stale = seen.status in HELD_TASK_STATUSES and (
                seen.heartbeat_at is None or seen.heartbeat_at < stale_before
            )
            if seen.status != TaskStatus.QUEUED and not stale:
                logger.info(
                    "task not claimable; delivery ignored",
                    extra={"status": seen.status.value, "holder": seen.worker_id},
                )
                return None
            # Conditional on what we saw: a concurrent claim, cancel or heartbeat makes it match nothing.
            guard = [Task.id == self.task_id, Task.status == seen.status]
            if stale:
                guard.append(or_(Task.heartbeat_at.is_(None), Task.heartbeat_at < stale_before))
            if stale:
                refusal = None
                if seen.attempts >= max_attempts:
                    refusal = f"no attempts left ({seen.attempts} of {max_attempts})"
                else:
                    refusal = retry_refusal(seen.retry_after_acting, **await _acted(db_session, self.task_id))
                if refusal is not None:
                    return await self._fail_lost(db_session, guard, seen, now, refusal)
            else:
                # A new start (a lost worker's task already counted against its tenant's limits).
                over = await quota_refusal(db_session, seen.tenant_id, quotas, "task")
                if over is not None:
                    return await self._wait_quota(db_session, seen, guard, over, now)
                # An eval's task within its `parallel` (orchestrator/db/quotas.py).
                over = None if seen.eval_id is None else await eval_refusal(db_session, seen.eval_id)
                if over is not None:
                    return await self._wait_quota(db_session, seen, guard, over, now, message=eval_wait_message(over))
            claimed = {
                "status": TaskStatus.LEASING, "worker_id": self.worker_id, "claimed_at": now,
                "heartbeat_at": now, "attempts": Task.attempts + 1, "device_id": None, "waiting": None,
                "retry_at": None,
            }  # fmt: skip
            result = await db_session.execute(
                update(Task)
                .where(and_(*guard))
                .values(**claimed)
                .returning(*_CLAIM_COLUMNS)
                .execution_options(synchronize_session=False)
            )
            row = result.first()
            if row is None:
                logger.info("task claimed by someone else meanwhile; delivery ignored")
                return None
            payload = {"from": seen.status.value, "to": TaskStatus.LEASING.value, "worker_id": self.worker_id,
                       "attempt": row.attempts, "waiting": None}  # fmt: skip
            first_step, ended, avoid = 0, [], ()
            if stale:
                payload["reason"] = "reclaimed"
                if seen.worker_id is not None:
                    ended = await end_leases_held_by(db_session, seen.worker_id, now, WORKER_LOST)
                # The lost attempt is announced as any other that the infrastructure ended.
                lost = {"attempt": seen.attempts, "next_attempt": row.attempts, "max_attempts": max_attempts,
                        "reason": WORKER_LOST, "message": "its worker stopped heartbeating", "delay_s": 0,
                        "device_id": None, "avoid_device": False}  # fmt: skip
                await _event(db_session, row.tenant_id, self.task_id, RETRYING_EVENT, lost)
            if row.attempts > 1:
                # Steps are unique per (task, index): the earlier attempt's stay, this one's follow them.
                first_step = await db_session.scalar(
                    select(func.coalesce(func.max(Step.index) + 1, 0)).where(Step.task_id == self.task_id)
                )
                avoid = await _failed_devices(db_session, self.task_id)
            await _event(db_session, row.tenant_id, self.task_id, "task.status", payload)
            phone_apps = None
            if row.personal_phone_id is not None:
                phone_apps = await db_session.scalar(
                    select(PersonalPhone.allowed_apps).where(PersonalPhone.id == row.personal_phone_id)
                )
        self.tenant_id, self.status = row.tenant_id, TaskStatus.LEASING
        fields = {"attempt": row.attempts, "reclaimed": stale, "worker_id": self.worker_id}
        if stale:
            fields |= {"previous_holder": seen.worker_id, "ended_leases": len(ended)}
        logger.info("task claimed", extra=fields)
        return Claim(
            task_id=self.task_id, tenant_id=row.tenant_id, instruction=row.instruction,
            device_profile=row.device_profile, max_steps=row.max_steps, timeout_s=row.timeout_s,
            model=row.model, attempts=row.attempts, reclaimed=stale, first_step=first_step,
            ended_leases=len(ended), retry_after_acting=row.retry_after_acting, avoid_devices=avoid,
            max_tries=row.max_tries,
            personal_phone_id=row.personal_phone_id,
            subgoals=tuple(part["goal"] for part in row.subgoals or ()),
            on_step_failure=row.on_step_failure or "stop",
            allowed_apps=row.allowed_apps, phone_allowed_apps=phone_apps,
            evaluation=row.evaluation,
        )  # fmt: skip

    async def _wait_quota(
        self, db_session: DbSession, seen: Any, guard: list[Any], over: str, now: dt.datetime,
        *, message: str | None = None,
    ) -> None:
        """Leave the task ``queued``, saying which limit holds it (once: a re-send that finds the
        same limit writes nothing)."""
        message = message or f"{over}; it starts when the tenant has room"
        if (seen.waiting or {}).get("kind") == WaitingKind.QUOTA.value and seen.waiting.get(
            "message"
        ) == message:
            logger.info("task waits for its tenant's quota", extra={"limit": over})
            return None
        value = waiting(WaitingKind.QUOTA, message, now)
        result = await db_session.execute(
            update(Task)
            .where(and_(*guard))
            .values(waiting=value)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount:
            payload = {"status": TaskStatus.QUEUED.value, "waiting": value}
            await _event(db_session, seen.tenant_id, self.task_id, WAITING_EVENT, payload)
            logger.info("task waits for its tenant's quota", extra={"limit": over})
        return None

    async def _fail_lost(
        self, db_session: DbSession, guard: list[Any], seen: Any, now: dt.datetime, refusal: str
    ) -> None:
        attempts = seen.attempts
        message = f"its worker stopped heartbeating on attempt {attempts}; not retried: {refusal}"
        result = await db_session.execute(
            update(Task)
            .where(and_(*guard))
            .values(
                status=TaskStatus.FAILED, reason=WORKER_LOST, message=message, finished_at=now, waiting=None
            )
            .returning(Task.tenant_id)
            .execution_options(synchronize_session=False)
        )
        tenant_id = result.scalar_one_or_none()
        if tenant_id is not None:
            payload = {
                "from": seen.status.value,
                "to": TaskStatus.FAILED.value,
                "reason": WORKER_LOST,
                "waiting": None,
            }
            await _event(db_session, tenant_id, self.task_id, "task.status", payload)
            if seen.worker_id is not None:
                await end_leases_held_by(db_session, seen.worker_id, now, WORKER_LOST)
            logger.warning("task failed: worker lost", extra={"attempts": attempts, "refusal": refusal})
        return None

    async def set_status(
        self, status: TaskStatus, *, detail: str = "", waiting: dict[str, Any] | None = None, **values: Any
    ) -> bool:
        """Move a held task to ``status`` (and set ``values``), waiting on ``waiting`` (None: moving);
        False if it is no longer ours."""
        if status == self.status and not values and waiting == self.waiting:
            return True
        async with self._written() as db_session:
            if not await self._move(db_session, status, detail, waiting, values):
                return False
        self.status, self.waiting = status, waiting
        logger.info("task status", extra={"status": status.value})
        return True

    async def ask(
        self, status: TaskStatus, waiting: dict[str, Any], request: str, payload: dict[str, Any]
    ) -> int | None:
        """Move a held task to ``status`` (waiting on a person) and write the agent's ``request``
        event, in one transaction: a person who answers as soon as the status shows finds the
        request there, never a 409 "the agent has not asked yet". Returns the request's event id;
        None if the task is no longer ours."""
        async with self._written() as db_session:
            if not await self._move(db_session, status, waiting["message"], waiting, {}):
                return None
            event_id = await _event(db_session, self.tenant_id, self.task_id, request, payload)
        self.status, self.waiting = status, waiting
        logger.info("task status", extra={"status": status.value, "request": request})
        return event_id

    async def _move(
        self,
        db_session: DbSession,
        status: TaskStatus,
        detail: str,
        waiting: dict[str, Any] | None,
        values: dict[str, Any],
    ) -> bool:
        """The status update and its event, in the caller's transaction; False if not ours."""
        result = await db_session.execute(
            update(Task)
            .where(
                Task.id == self.task_id,
                Task.worker_id == self.worker_id,
                Task.status.in_(HELD_TASK_STATUSES),
            )
            .values(status=status, waiting=waiting, **values)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 0:
            return False
        if status != self.status:
            payload: dict[str, Any] = {"from": str(self.status), "to": status.value, "waiting": waiting}
            if detail:
                payload["detail"] = detail
            if "device_id" in values:
                payload["device_id"] = str(values["device_id"])
            await _event(db_session, self.tenant_id, self.task_id, "task.status", payload)
        elif waiting != self.waiting:
            await _event(db_session, self.tenant_id, self.task_id, WAITING_EVENT,
                         {"status": status.value, "waiting": waiting})  # fmt: skip
        return True

    async def set_waiting(self, waiting: dict[str, Any] | None) -> bool:
        """Say why the held task is not moving (None: it moves again) without changing its status,
        with a ``task.waiting`` event; False if it is no longer ours."""
        if self.status is None:
            return False
        return await self.set_status(self.status, waiting=waiting)

    async def add_step(
        self,
        step: dict[str, Any],
        event: dict[str, Any],
        *,
        jpeg: bytes | None = None,
        data_dir: Path | None = None,
        cipher: Cipher | None = None,
    ) -> int:
        """Insert a ``steps`` row at the task's next index (``insert_step``: the API writes a person's
        steps to the same task) and its ``task.step`` event in one transaction; returns the index."""
        async with self._written(write=True) as db_session:
            index = await insert_step(
                db_session, self.task_id, step, jpeg=jpeg, data_dir=data_dir, cipher=cipher
            )
            await _event(db_session, self.tenant_id, self.task_id, "task.step", {"index": index, **event})
        return index

    async def user_steps_since_agent(self) -> list[Step]:
        """The person's steps (``actor`` user) recorded after the agent's last step, oldest first:
        what a person did during the takeover that just ended."""
        async with self.db.transaction() as db_session:
            last_agent = await db_session.scalar(
                select(func.max(Step.index)).where(Step.task_id == self.task_id, Step.actor == AGENT)
            )
            query = select(Step).where(Step.task_id == self.task_id, Step.actor == USER)
            if last_agent is not None:
                query = query.where(Step.index > last_agent)
            return list(await db_session.scalars(query.order_by(Step.index)))

    async def update_step(self, index: int, values: dict[str, Any], event: dict[str, Any]) -> None:
        """Rewrite step ``index`` (a step recorded when it asked a person, now with its end) and
        write its ``task.step`` event again, in one transaction."""
        async with self._written() as db_session:
            await db_session.execute(
                update(Step).where(Step.task_id == self.task_id, Step.index == index).values(**values)
            )
            await _event(db_session, self.tenant_id, self.task_id, "task.step", event)

    async def set_subgoals(self, chain: list[dict[str, Any]], event: dict[str, Any]) -> bool:
        """Write the task's chain (``tasks.subgoals``) and a ``task.subgoal`` event (``event``: the
        subgoal that moved) in one transaction; False if the task is no longer ours."""
        async with self._written() as db_session:
            result = await db_session.execute(
                update(Task)
                .where(Task.id == self.task_id, Task.worker_id == self.worker_id,
                       Task.status.in_(HELD_TASK_STATUSES))
                .values(subgoals=chain)
                .execution_options(synchronize_session=False)
            )  # fmt: skip
            if result.rowcount == 0:
                return False
            await _event(db_session, self.tenant_id, self.task_id, SUBGOAL_EVENT, event)
        return True

    async def add_event(self, type_: str, payload: dict[str, Any]) -> int:
        """Write an event on this task; returns its id."""
        async with self._written() as db_session:
            return await _event(db_session, self.tenant_id, self.task_id, type_, payload)

    async def events_after(self, after_id: int, types: tuple[str, ...]) -> list[Event]:
        """This task's events of ``types`` with an id above ``after_id``, oldest first."""
        async with self.db.transaction() as db_session:
            rows = await db_session.scalars(
                select(Event)
                .where(Event.task_id == self.task_id, Event.id > after_id, Event.type.in_(types))
                .order_by(Event.id)
            )
            return list(rows)

    async def read(self) -> TaskRow | None:
        """The row's status, holder and result (one indexed read; the watcher calls it twice a second)."""
        async with self.db.transaction() as db_session:
            row = (
                await db_session.execute(
                    select(Task.status, Task.worker_id, Task.result).where(Task.id == self.task_id)
                )
            ).first()
        return None if row is None else TaskRow(row.status, row.worker_id, dict(row.result or {}))

    async def heartbeat(self) -> bool:
        """Stamp ``heartbeat_at``; False if the task is no longer this run's, or its stamp is stale:
        past ``stale_s`` the task may be taken over at any moment, so the run must stop either way."""
        now = utcnow()
        guard = [
            Task.id == self.task_id,
            Task.worker_id == self.worker_id,
            Task.status.in_(HELD_TASK_STATUSES),
        ]
        if self.stale_s is not None:
            guard.append(Task.heartbeat_at >= now - dt.timedelta(seconds=self.stale_s))
        async with self.db.transaction() as db_session:
            result = await db_session.execute(
                update(Task)
                .where(*guard)
                .values(heartbeat_at=now)
                .execution_options(synchronize_session=False)
            )
            return result.rowcount > 0

    async def retry_refusal(self, retry_after_acting: bool | None) -> str | None:
        """``retry_refusal`` for this task as its steps and events stand now."""
        async with self.db.transaction() as db_session:
            return retry_refusal(retry_after_acting, **await _acted(db_session, self.task_id))

    async def requeue(
        self,
        *,
        reason: str,
        message: str,
        attempt: int,
        max_attempts: int,
        delay_s: float,
        device_id: uuid.UUID | None = None,
        avoid_device: bool = False,
        summary: dict[str, Any] | None = None,
    ) -> TaskStatus | None:
        """Put the held task back in the queue for another attempt in ``delay_s`` (see the module
        docstring); ``reason``/``message`` say why this attempt ended, ``avoid_device``: the next one
        avoids ``device_id``. Returns ``queued``; ``cancelled`` when a cancel request came meanwhile
        (the task ends then instead); None if the task is no longer ours."""
        now = utcnow()
        retry_at = now + dt.timedelta(seconds=delay_s)
        elsewhere = " on another phone if there is one" if avoid_device and device_id is not None else ""
        text = (f"attempt {attempt} of {max_attempts} ended: {message[:500]}; "
                f"attempt {attempt + 1} at {clock(retry_at)}{elsewhere}")  # fmt: skip
        value = waiting(WaitingKind.RETRYING, text, now)
        async with self._written(write=True) as db_session:
            current = await self._held(db_session)
            if current is None:
                logger.warning("task no longer ours; not re-queued", extra={"reason": reason})
                return None
            if CANCEL_REQUESTED in (current.result or {}):
                values: dict[str, Any] = {"status": TaskStatus.CANCELLED, "reason": "cancelled",
                                          "message": "cancelled by user", "finished_at": now, "waiting": None}  # fmt: skip
                payload: dict[str, Any] = {"from": current.status.value, "to": TaskStatus.CANCELLED.value,
                                           "reason": "cancelled", "waiting": None}  # fmt: skip
            else:
                values = {"status": TaskStatus.QUEUED, "worker_id": None, "claimed_at": None, "device_id": None,
                          "waiting": value, "retry_at": retry_at}  # fmt: skip
                payload = {"from": current.status.value, "to": TaskStatus.QUEUED.value, "reason": reason,
                           "waiting": value}  # fmt: skip
            await db_session.execute(
                update(Task)
                .where(Task.id == self.task_id)
                .values(**values)
                .execution_options(synchronize_session=False)
            )
            await _event(db_session, self.tenant_id, self.task_id, "task.status", payload)
            if values["status"] == TaskStatus.QUEUED:
                retrying = {
                    "attempt": attempt, "next_attempt": attempt + 1, "max_attempts": max_attempts, "reason": reason,
                    "message": message[:2000], "delay_s": round(delay_s, 3), "retry_at": retry_at.isoformat(),
                    "device_id": None if device_id is None else str(device_id), "avoid_device": avoid_device,
                    **(summary or {}),
                }  # fmt: skip
                await _event(db_session, self.tenant_id, self.task_id, RETRYING_EVENT, retrying)
        status = values["status"]
        self.status, self.waiting = status, values["waiting"]
        logger.warning(
            "task re-queued" if status == TaskStatus.QUEUED else "task cancelled instead of re-queued",
            extra={"reason": reason, "attempt": attempt, "delay_s": round(delay_s, 3), "avoid_device": avoid_device},
        )  # fmt: skip
        return status

    async def _held(self, db_session: DbSession) -> Any:
        """The task's ``status`` and ``result``, locked (PostgreSQL; SQLite holds the write lock: the
        API's cancel merges into ``result`` concurrently); None when this run no longer holds it."""
        current = (
            await db_session.execute(
                select(Task.status, Task.result, Task.eval_id)
                .where(Task.id == self.task_id, Task.worker_id == self.worker_id)
                .with_for_update()
            )
        ).first()
        return current if current is not None and current.status in HELD_TASK_STATUSES else None

    async def finish(
        self, status: TaskStatus, *, reason: str | None, message: str, result: dict[str, Any]
    ) -> bool:
        """End the task, merging ``result`` into the row's (the API's cancel request stays); False if not ours."""
        now = utcnow()
        async with self._written(write=True) as db_session:
            current = await self._held(db_session)
            if current is None:
                logger.warning("task no longer ours; its end is not recorded", extra={"status": str(status)})
                return False
            await db_session.execute(
                update(Task)
                .where(Task.id == self.task_id)
                .values(
                    status=status,
                    reason=reason,
                    message=message[:4000],
                    finished_at=now,
                    result={**(current.result or {}), **result},
                    waiting=None,
                )
                .execution_options(synchronize_session=False)
            )
            payload: dict[str, Any] = {"from": current.status.value, "to": status.value, "waiting": None}
            if reason:
                payload["reason"] = reason
            # The completion event says how it ended for those who only read events (webhooks): the
            # final message and where the last screenshot is (a path of the API, not the image).
            payload["message"] = message[:4000]
            payload["final_screenshot_url"] = await _final_screenshot_url(db_session, self.task_id)
            await _event(db_session, self.tenant_id, self.task_id, "task.status", payload)
            if current.eval_id is not None:
                self.handed_on = await _next_of_eval(db_session, current.eval_id, now)
        self.status, self.waiting = status, None
        logger.info("task finished", extra={"status": status.value, "reason": reason})
        return True


async def _next_of_eval(db_session: DbSession, eval_id: uuid.UUID, now: dt.datetime) -> list[uuid.UUID]:
    """The eval's oldest tasks held back by its ``parallel``, moved back to ``queued`` (their messages
    are the caller's to send once this commits: ``RunEnd.send_now``) when the ending task freed a
    slot; [] when none waits or the eval has no room. The sweeper's quota pass sends any this misses."""
    room = await eval_room(db_session, eval_id)
    if not room:  # None (no parallel: none was held back) or 0
        return []
    rows = (await db_session.execute(eval_held_back(eval_id, room).with_for_update(skip_locked=True))).all()
    value = waiting(WaitingKind.QUEUED, EVAL_ROOM_MESSAGE, now)
    for row in rows:
        await db_session.execute(
            update(Task).where(Task.id == row.id).values(waiting=value).execution_options(synchronize_session=False)
        )
        await _event(db_session, row.tenant_id, row.id, WAITING_EVENT, {"status": TaskStatus.QUEUED.value, "waiting": value})
    return [row.id for row in rows]


async def _final_screenshot_url(db_session: DbSession, task_id: uuid.UUID) -> str | None:
    """The API path of the task's last screenshot (``GET /api/v1/tasks/{id}/steps/{index}/screenshot``)."""
    index = await db_session.scalar(
        select(func.max(Step.index)).where(Step.task_id == task_id, Step.screenshot.is_not(None))
    )
    return None if index is None else f"/api/v1/tasks/{task_id}/steps/{index}/screenshot"


async def _acted(db_session: DbSession, task_id: uuid.UUID) -> dict[str, bool]:
    """Whether the task acted on the phone (a step of an ``ACTING`` action that went through) and
    whether it made a sensitive step (``_SENSITIVE_EVENTS``), over all its attempts."""
    acted = await db_session.scalar(
        select(Step.id)
        .where(
            Step.task_id == task_id, Step.result == "ok", Step.action["name"].as_string().in_(sorted(ACTING))
        )
        .limit(1)
    )
    sensitive = await db_session.scalar(
        select(Event.id).where(Event.task_id == task_id, Event.type.in_(_SENSITIVE_EVENTS)).limit(1)
    )
    return {"acted": acted is not None or sensitive is not None, "sensitive": sensitive is not None}


async def _failed_devices(db_session: DbSession, task_id: uuid.UUID) -> tuple[uuid.UUID, ...]:
    """The phones earlier attempts of the task failed on (their ``task.retrying`` events), oldest first."""
    payloads = await db_session.scalars(
        select(Event.payload).where(Event.task_id == task_id, Event.type == RETRYING_EVENT).order_by(Event.id)
    )
    found = [p["device_id"] for p in payloads if p and p.get("avoid_device") and p.get("device_id")]
    return tuple(uuid.UUID(d) for d in dict.fromkeys(found))


async def _event(
    db_session: DbSession,
    tenant_id: uuid.UUID | None,
    task_id: uuid.UUID,
    type_: str,
    payload: dict[str, Any],
) -> int:
    result = await db_session.execute(
        insert(Event)
        .values(tenant_id=tenant_id, task_id=task_id, type=type_, payload=payload, created_at=utcnow())
        .returning(Event.id)
    )
    return int(result.scalar_one())
