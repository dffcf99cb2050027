"""The caller's tenant: its retention, the export of all its data, and its deletion
(docs/security.md, "Encryption at rest and retention"; docs/api.md, "Tenant").

**Export** (``GET /api/v1/tenant/export``, admins): one zip, streamed —

- ``tenant.json``: ``{"format": 1, "exported_at", "tenant": {id, name, retention_days},
  "users": [{id, name, role, created_at}], "api_keys": [{id, name, prefix, user_id, created_at,
  last_used_at, revoked_at}]}`` (never a key's secret or hash);
- ``tasks.jsonl``, ``schedules.jsonl``, ``personal_phones.jsonl``: one row per line, as the API's
  GET of one answers;
- ``steps.jsonl``: each step as the steps API shows it, with ``task_id``, and ``screenshot``: its
  image's path in the zip (``screenshots/<task_id>/<index>.jpg``, decrypted), or null;
- ``events.jsonl``: ``{id, created_at, type, task_id, payload}``;
- ``webhook_subscriptions.jsonl``: ``{id, created_at, url, events}`` (never their secrets).

**Deletion** (``DELETE /api/v1/tenant?confirm=<tenant name>``, admins), refused (409) while the
tenant has a task that has not ended, an open session or a personal phone in use: in one
transaction, every row of the tenant in every table (tasks, steps, events, schedules, sessions,
webhook subscriptions and deliveries, and any table added later with a foreign key to them) is
deleted, its screenshots removed, its keys revoked (every login ends) and its personal phones marked
deleted; the pool then removes their data (volumes, data folders) and the retention reaper the last
rows — users, keys, the tenant (``retention.finish_deleted_tenants``; at once when it had no phones).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import uuid
import zipfile
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import func, select, update

from orchestrator.db import (
    ApiKey,
    Base,
    DeviceSession,
    Event,
    PersonalPhone,
    PersonalPhoneState,
    Schedule,
    SessionState,
    Step,
    Task,
    TaskStatus,
    Tenant,
    User,
    WebhookSubscription,
    utcnow,
)  # fmt: skip
from orchestrator.db.database import Database
from orchestrator.encryption import SealedDamaged, SealedWithOtherKey
from orchestrator.errors import ConfirmationMismatch, InvalidRequest, PermissionDenied, TenantBusy
from orchestrator.services.audit import record_audit
from orchestrator.services.auth import ApiKeyVerifier, Principal
from orchestrator.services.personal_phones import delete_phones_of
from orchestrator.services.retention import (
    UNLINKED,
    delete_rows,
    effective_retention_days,
    finish_deleted_tenants,
    remove_session_files,
    remove_task_files,
)
from orchestrator.services.trajectory_zip import ZipSink, zip_entry

__all__ = ["TenantDeletion", "TenantService", "TenantSnapshot", "tenant_zip"]

logger = logging.getLogger(__name__)

# Rows a deletion leaves for the last step: personal phones (the pool removes their data, then the
# row) and what they point at.
_LAST = frozenset({"personal_phones", "users", "api_keys", "tenants"})
# The operator's record of who did what outlives what it names (it has no foreign keys): a tenant's
# deletion is itself an entry in it (docs/security.md, "Audit log").
_KEPT = frozenset({"audit_log"})
_BUSY_PHONES = (PersonalPhoneState.WAKING, PersonalPhoneState.IN_USE, PersonalPhoneState.SLEEPING)


@dataclass
class TenantSnapshot:
    """Every row an export holds, read in one transaction."""

    tenant: Tenant
    users: list[User]
    api_keys: list[ApiKey]
    tasks: list[Task]
    steps: list[Step]
    schedules: list[Schedule]
    personal_phones: list[PersonalPhone]
    events: list[Event]
    subscriptions: list[WebhookSubscription]


@dataclass
class TenantDeletion:
    """What a deletion removed at once, and the personal phones whose data the pool removes next."""

    tenant_id: uuid.UUID
    name: str
    tasks: int
    personal_phones_pending: int
    finished: bool  # every row gone already (it had no personal phones)


class TenantService:
    """The caller's own tenant."""

    def __init__(
        self,
        db: Database,
        data_dir: Path,
        *,
        default_retention_days: int | None,
        verifier: ApiKeyVerifier | None = None,
    ) -> None:
        self.db = db
        self.verifier = verifier  # forgets the revoked keys at once in this process
        self.data_dir = Path(data_dir)
        self.default_retention_days = default_retention_days

    async def get(self, principal: Principal) -> Tenant:
        async with self.db.transaction() as db_session:
            return await db_session.get_one(Tenant, principal.tenant_id)

    def retention_days(self, tenant: Tenant) -> int | None:
        """The days its data is kept now (its own or the deployment's, the shorter); None: forever."""
        return effective_retention_days(tenant.retention_days, self.default_retention_days)

    async def set_retention(self, principal: Principal, days: int | None) -> Tenant:
        """Set (or, None, clear) the tenant's retention; admins. Raises ``PermissionDenied``,
        ``InvalidRequest`` (422: above the deployment's ``storage.retention_days``)."""
        _admin(principal, "setting the tenant's retention")
        default = self.default_retention_days
        if days is not None and default is not None and days > default:
            raise InvalidRequest(
                f"retention_days {days} is above this deployment's storage.retention_days ({default}): "
                "a tenant may keep its data for a shorter time only",
                context={"max": default},
            )
        async with self.db.transaction(write=True) as db_session:
            before = await db_session.scalar(select(Tenant.retention_days).where(Tenant.id == principal.tenant_id))
            await db_session.execute(
                update(Tenant).where(Tenant.id == principal.tenant_id).values(retention_days=days)
            )
            await record_audit(db_session, principal, "tenant.retention", target=f"tenant:{principal.tenant_id}",
                               detail={"before": before, "after": days})  # fmt: skip
        return await self.get(principal)

    async def snapshot(self, principal: Principal) -> TenantSnapshot:
        """All the tenant's data, for its export; admins (raises ``PermissionDenied``)."""
        _admin(principal, "exporting the tenant's data")
        tenant_id = principal.tenant_id
        async with self.db.transaction(write=True) as db_session:  # all its data leaves: worth a line
            await record_audit(db_session, principal, "tenant.export", target=f"tenant:{tenant_id}")

        async def rows(db_session: Any, model: Any, *order: Any) -> list[Any]:
            return list(
                await db_session.scalars(select(model).where(model.tenant_id == tenant_id).order_by(*order))
            )

        async with self.db.transaction() as db_session:
            tenant = await db_session.get_one(Tenant, tenant_id)
            steps = list(await db_session.scalars(
                select(Step).join(Task, Task.id == Step.task_id).where(Task.tenant_id == tenant_id)
                .order_by(Task.created_at, Task.id, Step.index)
            ))  # fmt: skip
            return TenantSnapshot(
                tenant=tenant,
                users=await rows(db_session, User, User.created_at),
                api_keys=await rows(db_session, ApiKey, ApiKey.created_at),
                tasks=await rows(db_session, Task, Task.created_at, Task.id),
                steps=steps,
                schedules=await rows(db_session, Schedule, Schedule.created_at),
                personal_phones=[
                    p
                    for p in await rows(db_session, PersonalPhone, PersonalPhone.created_at)
                    if p.deleted_at is None
                ],
                events=await rows(db_session, Event, Event.id),
                subscriptions=await rows(db_session, WebhookSubscription, WebhookSubscription.created_at),
            )

    async def delete(self, principal: Principal, confirm: str | None) -> TenantDeletion:
        """Delete all the tenant's data (see the module docstring); admins. Raises
        ``PermissionDenied``, ``ConfirmationMismatch`` (422), ``TenantBusy`` (409)."""
        _admin(principal, "deleting the tenant")
        tenant_id, now = principal.tenant_id, utcnow()
        async with self.db.transaction() as db_session:
            tenant = await db_session.get_one(Tenant, tenant_id)
            if confirm != tenant.name:
                raise ConfirmationMismatch(
                    f"deleting a tenant removes all its data for good: repeat its name as ?confirm={tenant.name}"
                )
            # Before any file goes; again in the transaction that deletes.
            await _refuse_busy(db_session, tenant_id)
            task_ids = list(await db_session.scalars(select(Task.id).where(Task.tenant_id == tenant_id)))
            session_ids = list(
                await db_session.scalars(select(DeviceSession.id).where(DeviceSession.tenant_id == tenant_id))
            )
        # Files first (as the reaper): the rows that name them go in the transaction below.
        await asyncio.to_thread(remove_task_files, self.data_dir, task_ids)
        await asyncio.to_thread(remove_session_files, self.data_dir, session_ids)
        async with self.db.transaction(write=True) as db_session:
            await _refuse_busy(db_session, tenant_id)
            tasks = await db_session.scalar(
                select(func.count()).select_from(Task).where(Task.tenant_id == tenant_id)
            )
            for table in _tenant_tables():
                if table.name in UNLINKED:
                    await db_session.execute(
                        update(table).where(table.c.tenant_id == tenant_id).values(tenant_id=None)
                    )
                elif table.name not in _LAST | _KEPT:
                    await delete_rows(db_session, table, table.c.tenant_id == tenant_id)
            revoked = await db_session.scalars(
                update(ApiKey)
                .where(ApiKey.tenant_id == tenant_id, ApiKey.revoked_at.is_(None))
                .values(revoked_at=now)
                .returning(ApiKey.prefix)
            )
            prefixes = list(revoked)
            phones = await delete_phones_of(db_session, tenant_id)
            pending = await db_session.scalar(
                select(func.count()).select_from(PersonalPhone).where(PersonalPhone.tenant_id == tenant_id)
            )
            await db_session.execute(update(Tenant).where(Tenant.id == tenant_id).values(deleted_at=now))
            await record_audit(db_session, principal, "tenant.delete", target=f"tenant:{tenant_id}",
                               detail={"name": tenant.name, "tasks": int(tasks or 0)})  # fmt: skip
        for prefix in prefixes if self.verifier is not None else ():
            self.verifier.forget(prefix)
        # Task files written between the read and the delete (none: no task was running) go too.
        await asyncio.to_thread(remove_task_files, self.data_dir, task_ids)
        finished = tenant_id in await finish_deleted_tenants(self.db) if not pending else False
        logger.warning(
            "tenant's data deleted",
            extra={"tenant_id": str(tenant_id), "tasks": tasks, "personal_phones": phones},
        )
        return TenantDeletion(tenant_id, tenant.name, int(tasks or 0), int(pending or 0), finished)


def _admin(principal: Principal, what: str) -> None:
    if not principal.is_admin:
        raise PermissionDenied(f"{what} is for the tenant's admins")


def _tenant_tables() -> list[Any]:
    return [t for t in reversed(Base.metadata.sorted_tables) if "tenant_id" in t.c]


async def _refuse_busy(db_session: Any, tenant_id: uuid.UUID) -> None:
    final = [s for s in TaskStatus if s.is_final]
    running = await db_session.scalar(
        select(func.count()).select_from(Task).where(Task.tenant_id == tenant_id, Task.status.not_in(final))
    )
    sessions = await db_session.scalar(
        select(func.count()).select_from(DeviceSession)
        .where(DeviceSession.tenant_id == tenant_id, DeviceSession.state == SessionState.ACTIVE)
    )  # fmt: skip
    phones = await db_session.scalar(
        select(func.count()).select_from(PersonalPhone)
        .where(PersonalPhone.tenant_id == tenant_id, PersonalPhone.state.in_(_BUSY_PHONES),
               PersonalPhone.deleted_at.is_(None))
    )  # fmt: skip
    if running or sessions or phones:
        raise TenantBusy(
            f"the tenant has {running} task(s) that have not ended, {sessions} open session(s) and "
            f"{phones} personal phone(s) in use: cancel and close them, then delete again",
            context={"tasks": running, "sessions": sessions, "personal_phones": phones},
        )


def tenant_zip(
    head: dict[str, Any],
    parts: Sequence[tuple[str, Sequence[dict[str, Any]]]],
    screenshots: Sequence[tuple[str, Path]],
    *,
    read: Callable[[Path], bytes],
    now: dt.datetime | None = None,
) -> Iterator[bytes]:
    """The export's bytes, a piece at a time (a blocking generator: serve it from a thread).
    ``screenshots``: (path in the zip, stored file); a line's ``screenshot`` naming one that could
    not be read becomes null."""
    stamp = (now or dt.datetime.now(dt.UTC)).timetuple()[:6]
    sink = ZipSink()
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(
            zip_entry("tenant.json", stamp), json.dumps(head, ensure_ascii=False, indent=2) + "\n"
        )
        yield sink.drain()
        written: set[str] = set()
        for name, path in screenshots:
            try:
                data = read(path)
            except (OSError, SealedWithOtherKey, SealedDamaged) as exc:
                logger.warning(
                    "screenshot left out of the export", extra={"path": str(path), "error": str(exc)}
                )
                continue
            archive.writestr(zip_entry(name, stamp), data, compresslevel=0)
            written.add(name)
            yield sink.drain()
        for name, lines in parts:
            with archive.open(zip_entry(name, stamp), "w") as out:
                for line in lines:
                    if line.get("screenshot") is not None and line["screenshot"] not in written:
                        line = {**line, "screenshot": None}
                    out.write((json.dumps(line, ensure_ascii=False) + "\n").encode())
                    if sink.buffered >= 64 * 1024:
                        yield sink.drain()
    yield sink.drain()
