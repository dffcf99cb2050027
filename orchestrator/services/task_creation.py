"""A new task: its row, its ``task.created`` event, the one-statement insert (PostgreSQL), and the
enqueue after the commit. Shared by submissions (``TaskService.create``) and schedules' runs (the
scheduler), so a run is made exactly as a submitted task is.
"""

from __future__ import annotations

import datetime as dt
import logging
import uuid
from typing import Any

from sqlalchemy import Insert, bindparam, insert, select

from orchestrator.db import Event, Task, TaskStatus, WaitingKind, utcnow, waiting
from orchestrator.db.database import Database
from orchestrator.errors import BrokerUnavailable
from orchestrator.notifier import PAYLOAD, EventSignal
from orchestrator.queue import TaskQueue
from orchestrator.services.waiting import QUEUED_MESSAGE, record_broker_unavailable

__all__ = ["CREATE_STATEMENT", "chain_of", "create_params", "created_event", "enqueue_created", "new_task"]

logger = logging.getLogger(__name__)


def new_task(
    *,
    tenant_id: uuid.UUID,
    created_by: uuid.UUID | None,
    fields: dict[str, Any],
    idempotency_key: str | None = None,
    schedule_id: uuid.UUID | None = None,
    due_at: dt.datetime | None = None,
) -> Task:
    """A new queued task row from a submission's stored fields (``TaskSpec.stored_fields``): the
    API's, or a schedule's run (``schedule_id`` and the ``due_at`` it was made for)."""
    created_at = utcnow()
    return Task(
        id=uuid.uuid4(),
        created_at=created_at,
        tenant_id=tenant_id,
        created_by=created_by,
        status=TaskStatus.QUEUED,
        idempotency_key=idempotency_key,
        instruction=fields["instruction"],
        device_profile=fields["device_profile"],
        max_steps=fields["max_steps"],
        # A schedule's stored body may leave it out (null, or made before tries): one try.
        max_tries=fields.get("max_tries") or 1,
        # A chain's subgoals as the task shows them (a stored body made before chains has none).
        subgoals=chain_of(fields.get("subgoals")),
        on_step_failure=fields.get("on_step_failure") if fields.get("subgoals") else None,
        timeout_s=fields["timeout_s"],
        model=fields["model"],
        webhook_url=fields["webhook_url"],
        metadata_=fields["metadata"],
        retry_after_acting=fields["retry_after_acting"],
        # A schedule's stored body has it as text, or lacks it (made before personal phones).
        personal_phone_id=_uuid(fields.get("personal_phone_id")),
        allowed_apps=fields.get("allowed_apps"),  # absent from a schedule's body made before allowlists
        attempts=0,
        # Written with the row: the answer says why it waits at no extra cost (control-plane.md).
        waiting=waiting(WaitingKind.QUEUED, QUEUED_MESSAGE, created_at),
        schedule_id=schedule_id,
        due_at=due_at,
        eval_id=_uuid(fields.get("eval_id")),
        evaluation=fields.get("evaluation"),
    )


def chain_of(goals: list[str] | None) -> list[dict[str, Any]] | None:
    """A new task's chain: each subgoal ``pending``, in order (the worker moves them on)."""
    if not goals:
        return None
    return [{"index": i, "goal": goal, "status": "pending"} for i, goal in enumerate(goals)]


def _uuid(value: uuid.UUID | str | None) -> uuid.UUID | None:
    return None if value is None else uuid.UUID(str(value))


def created_event(task: Task) -> Event:
    """The ``task.created`` event of a new task, to be added in the transaction that adds it."""
    return Event(tenant_id=task.tenant_id, task_id=task.id, type="task.created", payload=_created_payload(task),
                 created_at=utcnow())  # fmt: skip


async def enqueue_created(
    db: Database, queue: TaskQueue, notifier: EventSignal | None, task: Task
) -> None:
    """After a new task's commit: wake event readers and enqueue its run. A broker failure is
    logged and recorded on the task (``waiting`` = ``broker_unavailable``), never raised: the task
    is committed, and the sweeper re-enqueues it."""
    publication = None
    if notifier is not None:
        notifier.notify(remote=False)  # this process's event readers, now
        if notifier.redis_url is not None:
            publication = (notifier.redis_url, notifier.channel, PAYLOAD)
    published = False
    try:
        # Other processes' readers are told in the enqueue's round trip when the broker is
        # that Redis; else by the notifier itself.
        published = await queue.enqueue_run_task(task.id, task.device_profile, publish=publication)
    except BrokerUnavailable as exc:
        logger.warning(
            "task committed but not enqueued; the sweeper will re-enqueue it",
            extra={"task_id": str(task.id), "error": exc.message},
        )
        await record_broker_unavailable(db, task)
    if notifier is not None and not published:
        notifier.notify(local=False)


def _created_payload(task: Task) -> dict[str, Any]:
    return {"status": TaskStatus.QUEUED.value, "waiting": task.waiting}


_TASKS, _EVENTS = Task.__table__, Event.__table__
# Task attributes that are columns of the INSERT (attribute name → column name; metadata_ is "metadata").
_INSERTED = tuple(
    (attr, Task.__mapper__.attrs[attr].columns[0].name)
    for attr in (
        "id", "created_at", "tenant_id", "created_by", "status", "idempotency_key", "instruction",
        "device_profile", "max_steps", "max_tries", "subgoals", "on_step_failure", "timeout_s", "model",
        "webhook_url", "metadata_", "attempts", "waiting", "retry_after_acting", "personal_phone_id", "allowed_apps",
    )
)  # fmt: skip


def _create_statement() -> Insert:
    """A task and its ``task.created`` event in one PostgreSQL statement: a data-modifying CTE.

    WITH new_task AS (INSERT INTO tasks … RETURNING id, tenant_id) INSERT INTO events … SELECT …
    FROM new_task. Built once, with the columns' own types as bind types (values are encoded as the
    ORM's flush would encode them); SQLAlchemy compiles it once per process (its cache key is
    memoized on this object).
    """
    new_task = (
        insert(_TASKS)
        .values({column: bindparam(column, type_=_TASKS.c[column].type) for _, column in _INSERTED})
        .returning(_TASKS.c.id, _TASKS.c.tenant_id)
        .cte("new_task")
    )
    created = select(
        new_task.c.tenant_id,
        new_task.c.id,
        bindparam("event_type", type_=_EVENTS.c.type.type),
        bindparam("event_payload", type_=_EVENTS.c.payload.type),
        bindparam("event_at", type_=_EVENTS.c.created_at.type),
    )
    return insert(_EVENTS).from_select(["tenant_id", "task_id", "type", "payload", "created_at"], created)


CREATE_STATEMENT = _create_statement()


def create_params(task: Task) -> dict[str, Any]:
    """The bind values of ``CREATE_STATEMENT`` for ``task``."""
    params = {column: getattr(task, attr) for attr, column in _INSERTED}
    params.update(event_type="task.created", event_payload=_created_payload(task), event_at=task.created_at)
    return params
