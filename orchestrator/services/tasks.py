"""Tasks: submission (idempotent, one transaction, then the enqueue), reading, listing, cancelling,
and people's answers to a running agent (confirm, takeover, handback, reply).

Every state change here is one conditional UPDATE plus one ``events`` row in the same transaction
(the outbox). Cancelling a queued task ends it at once; cancelling one a worker holds records a
request the worker acts on at its next step boundary (see ``cancel``). Answers never change the
status (the worker owns it while it holds the task): each is one event the worker polls for
(``worker/run/hooks.py``), written under the task's row lock so two answers cannot race.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from orchestrator.db import CANCEL_REQUESTED, ApiKey, DbSession, Event, Task, TaskStatus, utcnow
from orchestrator.db.database import Database
from orchestrator.db.pagination import Page, newest_first, time_page
from orchestrator.db.steps import HAND_BACK, USER, insert_step
from orchestrator.errors import IdempotencyConflict, InvalidAnswer, InvalidTransition, TaskNotFound
from orchestrator.model_endpoints import endpoint_for
from orchestrator.notifier import EventSignal
from orchestrator.profiles import profile_match
from orchestrator.queue import TaskQueue
from orchestrator.services.auth import Principal
from orchestrator.services.personal_phones import PersonalPhoneService, check_own_phone
from orchestrator.services.ratelimit import RateLimiter
from orchestrator.services.specs import TaskSpec
from orchestrator.services.task_creation import (
    CREATE_STATEMENT,
    create_params,
    created_event,
    enqueue_created,
    new_task,
)
from orchestrator.services.webhook_targets import TargetPolicy
from orchestrator.settings import ModelSettings

__all__ = ["TaskService", "load_task"]

# The worker's request events, each with the reply event it waits for (worker/run/hooks.py).
CONFIRMATION_REQUESTED, CONFIRMATION = "task.confirmation_requested", "task.confirmation"
TAKEOVER_REQUESTED, HANDBACK = "task.takeover_requested", "task.handback"
QUESTION, REPLY = "task.question", "task.reply"
# A person taking control on their own initiative (the worker is to pause; see ``takeover``).
TAKEOVER = "task.takeover"
_EXCHANGE_EVENTS = (CONFIRMATION_REQUESTED, CONFIRMATION, TAKEOVER_REQUESTED, HANDBACK, QUESTION, REPLY)
_REQUESTS = (CONFIRMATION_REQUESTED, TAKEOVER_REQUESTED, QUESTION)

# What a replayed Idempotency-Key must match: the request's fields as stored on the task.
_SPEC_FIELDS = (
    "instruction", "device_profile", "max_steps", "max_tries", "timeout_s", "model", "webhook_url", "metadata",
    "retry_after_acting", "personal_phone_id", "subgoals", "on_step_failure",
)  # fmt: skip


def _stored_spec(task: Task) -> dict[str, Any]:
    return {
        "instruction": task.instruction,
        "device_profile": task.device_profile,
        "max_steps": task.max_steps,
        "max_tries": task.max_tries,
        "timeout_s": task.timeout_s,
        "model": task.model,
        "webhook_url": task.webhook_url,
        "metadata": task.metadata_,
        "retry_after_acting": task.retry_after_acting,
        "personal_phone_id": task.personal_phone_id,
        "subgoals": None if task.subgoals is None else [part["goal"] for part in task.subgoals],
        "on_step_failure": task.on_step_failure,
    }


class TaskService:
    """Task rules for one tenant at a time; every method takes the calling ``Principal``."""

    def __init__(
        self,
        db: Database,
        queue: TaskQueue,
        limiter: RateLimiter,
        *,
        profiles: Mapping[str, dict[str, Any]] | None = None,
        notifier: EventSignal | None = None,
        webhook_targets: TargetPolicy | None = None,
        personal_phones: PersonalPhoneService | None = None,
        default_max_tries: int = 1,
        models: ModelSettings | None = None,
    ) -> None:
        self.db = db
        self.models = models or ModelSettings()  # the endpoints a task's ``model`` may name
        self.personal_phones = personal_phones  # checks a task's personal_phone_id is the caller's
        self.queue = queue
        self.limiter = limiter
        self.profiles = dict(profiles or {})  # the named device profiles (settings.pool.profiles)
        self.notifier = notifier  # told after each commit that wrote events (a hint to event readers)
        self.webhook_targets = webhook_targets or TargetPolicy(allow_private=True)
        self.default_max_tries = default_max_tries  # settings.tasks.default_max_tries
        # PostgreSQL: a submission is one statement (``task_creation.CREATE_STATEMENT``); SQLite keeps the ORM.
        self._one_statement = db.engine is not None and db.engine.dialect.name == "postgresql"

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[DbSession]:
        """A read-then-write transaction; once it has committed, event readers are woken."""
        async with self.db.transaction(write=True) as db_session:
            yield db_session
        if self.notifier is not None:
            self.notifier.notify()

    async def create(
        self, principal: Principal, spec: TaskSpec, idempotency_key: str | None = None
    ) -> tuple[Task, bool]:
        """Submit a task; returns (task, created). A replayed key returns the original, created=False.

        Raises ``RateLimited``, ``UnknownDeviceProfile`` (a profile name not configured),
        ``UnknownModelEndpoint`` (a ``model`` that names no endpoint),
        ``PersonalPhoneNotFound`` (a personal phone that is not the caller's),
        ``WebhookTargetRefused`` (a private address where only public ones are allowed) and
        ``IdempotencyConflict`` (same key, different request). A broker failure after the commit is
        logged, not raised: the task stays queued for the sweeper.
        """
        await self.limiter.take(principal.tenant_id)
        profile_match(spec.device_profile, self.profiles)  # a name must exist; the worker resolves it
        await check_own_phone(self.personal_phones, principal, spec.personal_phone_id)
        fields = spec.stored_fields()
        if fields["model"] is not None:  # an endpoint's name is kept, whichever way it was named
            fields["model"] = endpoint_for(fields["model"], self.models).name
        if fields["max_tries"] is None:
            fields["max_tries"] = self.default_max_tries
        self.webhook_targets.check_url(fields["webhook_url"])
        task = new_task(
            tenant_id=principal.tenant_id, created_by=principal.key_id, fields=fields,
            idempotency_key=idempotency_key,
        )  # fmt: skip
        try:
            # Insert first and look the key up only on a collision: the common case is one round trip.
            if self._one_statement:
                # One statement is one implicit transaction: both rows or neither.
                await self.db.execute_alone(CREATE_STATEMENT, create_params(task))
            else:
                async with self.db.transaction() as db_session:
                    db_session.add(task)
                    # Flush the task first: with no relationship() between them, the ORM may order
                    # the event's INSERT first and trip its foreign key.
                    await db_session.flush()
                    db_session.add(created_event(task))
        except IntegrityError:
            if idempotency_key is None:
                raise
            return await self._replay(principal, idempotency_key, fields), False
        await enqueue_created(self.db, self.queue, self.notifier, task)
        return task, True

    async def get(self, principal: Principal, task_id: uuid.UUID) -> Task:
        """The tenant's task; raises ``TaskNotFound`` (also for another tenant's id)."""
        async with self.db.transaction() as db_session:
            return await load_task(db_session, principal, task_id)

    async def list(
        self,
        principal: Principal,
        *,
        status: TaskStatus | None,
        limit: int,
        cursor: str | None,
        schedule_id: uuid.UUID | None = None,
        personal_phone_id: uuid.UUID | None = None,
    ) -> Page[Task]:
        """The tenant's tasks (a schedule's runs only, with ``schedule_id``; those on one personal
        phone, with ``personal_phone_id``), newest first, ``limit`` at a time; raises
        ``InvalidCursor``."""
        query = select(Task).where(Task.tenant_id == principal.tenant_id)
        if status is not None:
            query = query.where(Task.status == status)
        if schedule_id is not None:
            query = query.where(Task.schedule_id == schedule_id)
        if personal_phone_id is not None:
            query = query.where(Task.personal_phone_id == personal_phone_id)
        query = newest_first(query, Task, cursor=cursor, limit=limit)
        async with self.db.transaction() as db_session:
            return time_page(list(await db_session.scalars(query)), limit)

    async def cancel(self, principal: Principal, task_id: uuid.UUID) -> Task:
        """Cancel a task. Raises ``TaskNotFound``, or ``InvalidTransition`` when it already ended.

        queued: → cancelled now, with a ``task.status`` event (a worker that receives its message
        later finds it no longer queued and drops it). Held by a worker (leasing, running, waiting
        for the user…): the status is the worker's to change, so this records a
        ``task.cancel_requested`` event and sets ``result["cancel_requested_at"]``, which the
        worker reads with its heartbeat and obeys at the next step boundary. Asking twice records
        one request.
        """
        async with self._write() as db_session:
            # FOR UPDATE (PostgreSQL; SQLite holds the write lock already): a worker's claim waits.
            task = await load_task(db_session, principal, task_id, for_update=True)
            if task.status.is_final:
                raise InvalidTransition(
                    f"task {task_id} already ended ({task.status.value}); it cannot be cancelled",
                    current=task.status.value,
                    requested=TaskStatus.CANCELLED.value,
                )
            if task.status == TaskStatus.QUEUED:
                task.status = TaskStatus.CANCELLED
                task.reason = "cancelled"
                task.message = "cancelled before it started"
                task.finished_at = utcnow()
                task.waiting = None
                payload = {
                    "from": TaskStatus.QUEUED.value,
                    "to": TaskStatus.CANCELLED.value,
                    "reason": "cancelled",
                    "waiting": None,
                }
                db_session.add(_event(task, "task.status", payload))
            elif CANCEL_REQUESTED not in (task.result or {}):
                # A new dict: JSON columns do not track in-place changes.
                task.result = {**(task.result or {}), CANCEL_REQUESTED: utcnow().isoformat()}
                db_session.add(_event(task, "task.cancel_requested", {"status": task.status.value}))
            return task

    async def confirm(self, principal: Principal, task_id: uuid.UUID, approved: bool) -> Task:
        """Approve or deny the sensitive action the agent waits on: a ``task.confirmation`` event.

        Raises ``TaskNotFound``, or ``InvalidTransition`` unless the task is
        ``awaiting_confirmation`` with an unanswered ``task.confirmation_requested``.
        """
        async with self._write() as db_session:
            task = await load_task(db_session, principal, task_id, for_update=True)
            self._require(task, "confirm", (TaskStatus.AWAITING_CONFIRMATION,))
            await self._require_pending(db_session, task, "confirm", CONFIRMATION_REQUESTED)
            db_session.add(_event(task, CONFIRMATION, {"approved": approved}))
            return task

    async def takeover(self, principal: Principal, task_id: uuid.UUID, note: str | None) -> Task:
        """A person takes control of a ``running`` or ``waiting_for_user`` task: a ``task.takeover``
        event {status, note, user_id}. Asking again before a handback records nothing new.

        The worker's watcher maps it to ``AgentSteering.pause`` and the task reports
        ``user_control`` at the agent's next step boundary; ``handback`` resumes it.
        """
        async with self._write() as db_session:
            task = await load_task(db_session, principal, task_id, for_update=True)
            self._require(task, "take over", (TaskStatus.RUNNING, TaskStatus.WAITING_FOR_USER))
            latest = await _latest_event(db_session, task, (TAKEOVER, HANDBACK))
            if latest is None or latest.type != TAKEOVER:
                # user_id: who holds control now (the live view lets only them send input).
                payload = {"status": task.status.value, "note": note, "user_id": str(principal.user_id)}
                db_session.add(_event(task, TAKEOVER, payload))
            return task

    async def handback(self, principal: Principal, task_id: uuid.UUID, note: str) -> Task:
        """Give control back to the agent: a ``task.handback`` event {note}, and a ``Hand_back`` step
        (``actor`` user, the note as its ``note``) after the person's recorded steps.

        Allowed in ``user_control``, and in ``waiting_for_user`` when what the agent waits on is
        a takeover (not a question: that one is answered by ``reply``).
        """
        async with self._write() as db_session:
            task = await load_task(db_session, principal, task_id, for_update=True)
            self._require(task, "hand back", (TaskStatus.WAITING_FOR_USER, TaskStatus.USER_CONTROL))
            if task.status == TaskStatus.WAITING_FOR_USER:
                await self._require_pending(db_session, task, "hand back", TAKEOVER_REQUESTED)
            db_session.add(_event(task, HANDBACK, {"note": note}))
            # The hand-back is the person's last step: the timeline shows their note in the order
            # of what they did (orchestrator/live/user_steps.py records the rest).
            step = {"actor": USER, "action": {"name": HAND_BACK, "message": note},
                    "action_text": f'do(action="{HAND_BACK}", message={json.dumps(note, ensure_ascii=False)})',
                    "result": "ok",
                    "note": note or None, "timings": {}}  # fmt: skip
            index = await insert_step(db_session, task.id, step)
            db_session.add(_event(task, "task.step", {"index": index, "action_text": step["action_text"],
                                                     "result": "ok", "current_app": None, "actor": USER}))  # fmt: skip
            return task

    async def reply(self, principal: Principal, task_id: uuid.UUID, answer: str) -> Task:
        """Answer the agent's question: a ``task.reply`` event {answer}.

        Raises ``InvalidTransition`` unless the task is ``waiting_for_user`` with an unanswered
        ``task.question``.
        """
        async with self._write() as db_session:
            task = await load_task(db_session, principal, task_id, for_update=True)
            self._require(task, "reply", (TaskStatus.WAITING_FOR_USER,))
            question = await self._require_pending(db_session, task, "reply", QUESTION)
            choices = (question.payload or {}).get("choices")
            if choices:
                # A question with choices (a chain's failed subgoal) takes one of them, in any case.
                chosen = answer.strip().lower()
                if chosen not in choices:
                    raise InvalidAnswer(
                        f"answer one of {', '.join(choices)} (got {answer[:80]!r})",
                        context={"choices": list(choices)},
                    )
                answer = chosen
            db_session.add(_event(task, REPLY, {"answer": answer}))
            return task

    @staticmethod
    def _require(task: Task, verb: str, allowed: tuple[TaskStatus, ...]) -> None:
        if task.status not in allowed:
            states = " or ".join(s.value for s in allowed)
            raise InvalidTransition(
                f"task {task.id} is {task.status.value}; you can {verb} only while it is {states}",
                current=task.status.value,
                requested=verb.replace(" ", ""),
            )

    @staticmethod
    async def _require_pending(db_session: DbSession, task: Task, verb: str, request: str) -> Event:
        """The agent's latest request must be ``request`` and still unanswered, else 409; returns it."""
        latest = await _latest_event(db_session, task, _EXCHANGE_EVENTS)
        if latest is not None and latest.type == request:
            return latest
        if latest is not None and latest.type in _REQUESTS:
            why = f"the agent is waiting for an answer to {latest.type}, not {request}"
        elif latest is not None:
            why = f"the agent's last request was already answered ({latest.type})"
        else:
            why = f"the agent has not asked yet (no {request} event)"
        raise InvalidTransition(
            f"task {task.id} ({task.status.value}): cannot {verb}: {why}",
            current=task.status.value,
            requested=verb.replace(" ", ""),
        )

    async def _replay(self, principal: Principal, key: str, fields: dict[str, Any]) -> Task:
        async with self.db.transaction() as db_session:
            task = await db_session.scalar(
                select(Task).where(Task.tenant_id == principal.tenant_id, Task.idempotency_key == key)
            )
        if task is None:  # the collision was not on the key after all
            raise RuntimeError(f"task insert failed, but no task has Idempotency-Key {key!r}")
        stored = _stored_spec(task)
        differing = sorted(name for name in _SPEC_FIELDS if stored[name] != fields[name])
        if differing:
            raise IdempotencyConflict(
                f"Idempotency-Key {key!r} was already used for task {task.id} with a different request "
                f"(differs in: {', '.join(differing)}); use a new key for a new task",
                context={"task_id": str(task.id), "fields": differing},
            )
        return task


async def load_task(
    db_session: DbSession, principal: Principal, task_id: uuid.UUID, *, for_update: bool = False
) -> Task:
    """The tenant's task in ``session``; raises ``TaskNotFound`` (also for another tenant's id)."""
    query = select(Task).where(Task.id == task_id, Task.tenant_id == principal.tenant_id)
    task = await db_session.scalar(query.with_for_update() if for_update else query)
    if task is None:
        raise TaskNotFound(task_id)
    return task


async def task_owner(db_session: DbSession, task: Task) -> uuid.UUID | None:
    """The user whose key submitted the task (None: no key, or a key of no user)."""
    if task.created_by is None:
        return None
    return await db_session.scalar(select(ApiKey.user_id).where(ApiKey.id == task.created_by))


async def _latest_event(db_session: DbSession, task: Task, types: tuple[str, ...]) -> Event | None:
    """The task's newest event of one of ``types`` (by id: the order the worker reads them in)."""
    query = (
        select(Event)
        .where(Event.task_id == task.id, Event.type.in_(types))
        .order_by(Event.id.desc())
        .limit(1)
    )
    return await db_session.scalar(query)


def _event(task: Task, type_: str, payload: dict[str, Any]) -> Event:
    return Event(tenant_id=task.tenant_id, task_id=task.id, type=type_, payload=payload, created_at=utcnow())
