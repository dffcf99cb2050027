"""The control plane's writes of a task's ``waiting`` object (docs/api.md, "Why a task waits").

The API says ``queued`` when it creates a task (in the creating statement, ``TaskService.create``)
and ``broker_unavailable`` when the enqueue after that commit fails; the sweeper says ``queued``
again once a re-send of such a task was taken. The worker writes the rest (``worker/run/rows.py``).
Each write here is one UPDATE conditional on the task still being ``queued`` (a claim or a cancel
that came first wins) plus its ``task.waiting`` event, in one transaction.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy import insert, update

from orchestrator.db import WAITING_EVENT, DbSession, Event, Task, TaskStatus, WaitingKind, utcnow, waiting
from orchestrator.db.database import Database
from orchestrator.errors import DatabaseUnavailable

__all__ = ["QUEUED_MESSAGE", "record_broker_unavailable", "set_queued_waiting"]

logger = logging.getLogger(__name__)

QUEUED_MESSAGE = "waiting for a worker to claim it"
BROKER_UNAVAILABLE_MESSAGE = "the task queue did not take it; it is sent again when the queue answers"


async def set_queued_waiting(
    db_session: DbSession,
    tenant_id: uuid.UUID,
    task_id: uuid.UUID,
    kind: WaitingKind,
    message: str,
    *,
    only_if: WaitingKind | None = None,
) -> dict[str, Any] | None:
    """Set a queued task's ``waiting`` (only where its kind is ``only_if``, when given) with a
    ``task.waiting`` event; returns the object written, None when the task no longer matched."""
    now = utcnow()
    value = waiting(kind, message, now)
    guard = [Task.id == task_id, Task.status == TaskStatus.QUEUED]
    if only_if is not None:
        guard.append(Task.waiting["kind"].as_string() == only_if.value)
    result = await db_session.execute(
        update(Task).where(*guard).values(waiting=value).execution_options(synchronize_session=False)
    )
    if not result.rowcount:
        return None
    payload = {"status": TaskStatus.QUEUED.value, "waiting": value}
    await db_session.execute(
        insert(Event).values(tenant_id=tenant_id, task_id=task_id, type=WAITING_EVENT, payload=payload, created_at=now)
    )
    return value


async def record_broker_unavailable(db: Database, task: Task) -> None:
    """Say on a new task (``task.waiting`` too) that its message never reached the broker.

    A database failure here is only logged: the task is committed, and the sweeper re-sends it all
    the same. ``task`` (the row the API answers with) gets the object written.
    """
    try:
        async with db.transaction(write=True) as db_session:
            written = await set_queued_waiting(
                db_session, task.tenant_id, task.id, WaitingKind.BROKER_UNAVAILABLE, BROKER_UNAVAILABLE_MESSAGE
            )
    except DatabaseUnavailable as exc:
        logger.warning("could not record the broker outage on the task", extra={"error": exc.message})
        return
    if written is not None:
        task.waiting = written
