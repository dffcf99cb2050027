"""Retention: the reaper that removes a tenant's data older than its retention, and the one way rows
are removed with everything that points at them (``delete_rows``, also used by a tenant's deletion,
``services/tenants.py``). docs/security.md, "Encryption at rest and retention".

One ``reap()``, per tenant whose retention is set (``tenants.retention_days``, else
``storage.retention_days``; a tenant's own never above the deployment's when that is set):

- **Tasks** that ended (succeeded, failed, cancelled, timed out) before the cutoff
  (``finished_at``, else ``created_at``): their screenshot folder ``{data_dir}/tasks/<id>/`` first,
  then the rows — the task, its steps, its events and their webhook deliveries. A task that has not
  ended is never removed, however old. The pool's lease log is kept, its ``task_id`` unlinked.
- **Session recordings** (``{data_dir}/sessions/<id>/``) of sessions that ended before the cutoff;
  the session rows stay.
- **Events** of the tenant created before the cutoff (those of tasks still running too: the task
  keeps its state in its own row), with their webhook deliveries.

Nothing else: schedules, sessions, personal phones, users, keys and webhook subscriptions stay.
Then tenants whose deletion waits on their personal phones' data (``tenants.deleted_at``) are
finished when the pool has removed it (``finish_deleted_tenants``).

Run by ``phonefleet pool`` every ``storage.reap_interval_s``; several pools may run it at once
(each pass deletes what is there; a second pass finds less).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import ColumnElement, Table, delete, func, select, update

from orchestrator.db import Base, DeviceSession, Event, PersonalPhone, Task, TaskStatus, Tenant, utcnow
from orchestrator.db.database import Database
from orchestrator.db.engine import DbSession

__all__ = [
    "UNLINKED",
    "ReapReport",
    "RetentionReaper",
    "delete_rows",
    "effective_retention_days",
    "remove_task_files",
]

logger = logging.getLogger(__name__)

# Rows that outlive what they point at, unlinked (the column set NULL) instead of deleted: the
# pool's lease log (docs/control-plane.md) records which device was held when, not for whom.
UNLINKED = frozenset({"leases"})
_FINAL = [s for s in TaskStatus if s.is_final]


def effective_retention_days(tenant_days: int | None, default_days: int | None) -> int | None:
    """The days a tenant's data is kept: the shorter of its own and the deployment's; None: forever."""
    chosen = [d for d in (tenant_days, default_days) if d is not None]
    return min(chosen) if chosen else None


async def delete_rows(db_session: DbSession, table: Table, where: ColumnElement[bool]) -> int:
    """Delete ``table``'s rows matching ``where``, after every row of every table whose foreign key
    points at them (recursively; ``UNLINKED`` tables get the column set NULL). How many of
    ``table``'s. Written once for the reaper and a tenant's deletion, so a table added later with a
    foreign key to tasks, events or tenants is covered without being named here."""
    for child in Base.metadata.sorted_tables:
        for fk in child.foreign_keys:
            if fk.column.table is not table or child is table:
                continue
            going = select(fk.column).where(where)
            if child.name in UNLINKED:
                await db_session.execute(
                    update(child).where(fk.parent.in_(going)).values({fk.parent.name: None})
                )
            else:
                await delete_rows(db_session, child, fk.parent.in_(going))
    result = await db_session.execute(delete(table).where(where).execution_options(synchronize_session=False))
    return result.rowcount or 0


def remove_task_files(data_dir: Path, task_ids: list[uuid.UUID]) -> None:
    """Remove the tasks' folders: screenshots and recording (blocking: call it from a thread)."""
    for task_id in task_ids:
        shutil.rmtree(data_dir / "tasks" / str(task_id), ignore_errors=True)


def remove_session_files(data_dir: Path, session_ids: list[uuid.UUID]) -> None:
    """Remove the sessions' folders: their recordings (blocking: call it from a thread)."""
    for session_id in session_ids:
        shutil.rmtree(data_dir / "sessions" / str(session_id), ignore_errors=True)


@dataclass
class ReapReport:
    """What one pass removed: tasks (with their steps and screenshots), events, finished tenants."""

    tasks: int = 0
    events: int = 0
    tenants: list[uuid.UUID] | None = None


class RetentionReaper:
    """Removes data past its tenant's retention (see the module docstring)."""

    def __init__(self, db: Database, data_dir: Path, *, default_days: int | None, batch: int = 500) -> None:
        self.db = db
        self.data_dir = Path(data_dir)
        self.default_days = default_days
        self.batch = batch

    async def reap(self, now: dt.datetime | None = None) -> ReapReport:
        now = now or utcnow()
        report = ReapReport()
        async with self.db.transaction() as db_session:
            tenants = (
                await db_session.execute(
                    select(Tenant.id, Tenant.retention_days).where(Tenant.deleted_at.is_(None))
                )
            ).all()
        for tenant in tenants:
            days = effective_retention_days(tenant.retention_days, self.default_days)
            if days is None:
                continue
            cutoff = now - dt.timedelta(days=days)
            report.tasks += await self._reap_tasks(tenant.id, cutoff)
            await self._reap_session_files(tenant.id, cutoff)
            report.events += await self._reap_events(tenant.id, cutoff)
        report.tenants = await finish_deleted_tenants(self.db)
        if report.tasks or report.events or report.tenants:
            logger.info(
                "retention reaped",
                extra={"tasks": report.tasks, "events": report.events, "tenants": len(report.tenants)},
            )
        return report

    async def _reap_tasks(self, tenant_id: uuid.UUID, cutoff: dt.datetime) -> int:
        ended = func.coalesce(Task.finished_at, Task.created_at)
        removed = 0
        while True:
            async with self.db.transaction() as db_session:
                ids = list(
                    await db_session.scalars(
                        select(Task.id)
                        .where(Task.tenant_id == tenant_id, Task.status.in_(_FINAL), ended < cutoff)
                        .limit(self.batch)
                    )
                )
            if not ids:
                return removed
            # Files first: a row whose file is gone reads as "screenshot gone"; a file whose row is
            # gone would be kept past its retention with nothing left to find it by.
            await asyncio.to_thread(remove_task_files, self.data_dir, ids)
            async with self.db.transaction(write=True) as db_session:
                removed += await delete_rows(
                    db_session, Task.__table__, Task.id.in_(ids) & Task.status.in_(_FINAL)
                )
            if len(ids) < self.batch:
                return removed

    async def _reap_session_files(self, tenant_id: uuid.UUID, cutoff: dt.datetime) -> None:
        async with self.db.transaction() as db_session:
            ids = list(
                await db_session.scalars(
                    select(DeviceSession.id).where(
                        DeviceSession.tenant_id == tenant_id, DeviceSession.closed_at < cutoff
                    )
                )
            )
        if ids:
            await asyncio.to_thread(remove_session_files, self.data_dir, ids)

    async def _reap_events(self, tenant_id: uuid.UUID, cutoff: dt.datetime) -> int:
        async with self.db.transaction(write=True) as db_session:
            return await delete_rows(
                db_session, Event.__table__, (Event.tenant_id == tenant_id) & (Event.created_at < cutoff)
            )

    async def run(self, interval_s: float, stop: asyncio.Event) -> None:
        """Reap every ``interval_s`` until ``stop`` is set; errors are logged, never fatal."""
        while not stop.is_set():
            try:
                await self.reap()
            except Exception:
                logger.exception("retention pass failed; the next one retries")
            try:
                await asyncio.wait_for(stop.wait(), timeout=interval_s)
            except TimeoutError:
                pass


async def finish_deleted_tenants(db: Database) -> list[uuid.UUID]:
    """Remove the last rows (users, keys, the tenant) of every deleted tenant whose personal phones
    the pool has removed (their data with them); the ids finished."""
    async with db.transaction() as db_session:
        waiting = select(PersonalPhone.id).where(PersonalPhone.tenant_id == Tenant.id).exists()
        ids = list(
            await db_session.scalars(select(Tenant.id).where(Tenant.deleted_at.is_not(None), ~waiting))
        )
    finished = []
    for tenant_id in ids:
        async with db.transaction(write=True) as db_session:
            if await db_session.scalar(
                select(PersonalPhone.id).where(PersonalPhone.tenant_id == tenant_id).limit(1)
            ):
                continue
            await delete_rows(db_session, _table(Tenant), Tenant.id == tenant_id)
        finished.append(tenant_id)
        logger.info("tenant deleted", extra={"tenant_id": str(tenant_id)})
    return finished


def _table(model: Any) -> Table:
    return model.__table__
