"""Device rows for the pool manager: register, list, and the guarded state changes outside a lease.

Every change is one conditional UPDATE (``WHERE id = … AND state IN (…)``) in its own transaction,
so two managers, a reaper and a leaser can race on a row and exactly one wins; the losers get False.
On SQLite each write transaction starts with ``BEGIN IMMEDIATE`` (the write lock up front, so a
read-then-write transaction never fails to upgrade its lock).

**Quarantine** (``quarantine``): a phone that stopped answering is ``unhealthy`` with
``quarantined_at`` and ``quarantine_reason`` set, and stays out: ``mark_idle`` and ``mark_resetting``
refuse a quarantined row, so it is never idle again, hence never leased (``acquire`` takes idle rows
only). It leaves quarantine by being retired (its phone replaced), by coming back as a new phone
(``register`` of a retired row), or by ``end_quarantine`` (a phone the provider cannot replace,
given another chance).

Events: ``events.tenant_id`` is NOT NULL, so changes that belong to no tenant (a device registered,
reset to idle, marked unhealthy, retired) write no event row; the lease changes (``leases.py``) do,
when the lease names a tenant. Device changes are logged with ``device_id`` instead.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import logging
import uuid
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any, Self

from sqlalchemy import ColumnElement, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncEngine

from device_pool.pool.signals import IDLE, LocalSignal, Signal
from orchestrator.db import (
    BEGIN_IMMEDIATE,
    DbSession,
    DbSessions,
    Device,
    DeviceState,
    make_sessionmaker,
    utcnow,
)

logger = logging.getLogger(__name__)

_DIALECTS = ("postgresql", "sqlite")
# idle is reached only from these: a device that was leased goes through resetting first.
_BEFORE_IDLE = (DeviceState.RESETTING, DeviceState.PROVISIONING)
# A leased device belongs to its holder: nothing but release and the reaper may change it.
_NOT_LEASED = (DeviceState.PROVISIONING, DeviceState.IDLE, DeviceState.RESETTING, DeviceState.UNHEALTHY)
# The extra condition that keeps a quarantined device from moving towards idle.
_NOT_QUARANTINED = Device.quarantined_at.is_(None)


@dataclass(frozen=True)
class DeviceRecord:
    """A snapshot of one device row."""

    id: uuid.UUID
    provider: str
    serial: str
    state: DeviceState
    profile: dict[str, Any]
    labels: dict[str, Any]
    lease_id: uuid.UUID | None
    lease_expires_at: dt.datetime | None
    health_checked_at: dt.datetime | None
    last_error: str | None
    updated_at: dt.datetime
    quarantined_at: dt.datetime | None = None
    quarantine_reason: str | None = None
    personal_phone_id: uuid.UUID | None = None  # the personal phone whose data it runs now

    @property
    def quarantined(self) -> bool:
        return self.quarantined_at is not None

    @classmethod
    def of(cls, row: Device) -> DeviceRecord:
        return cls(
            id=row.id,
            provider=row.provider,
            serial=row.serial,
            state=DeviceState(row.state),
            profile=dict(row.profile or {}),
            labels=dict(row.labels or {}),
            lease_id=row.lease_id,
            lease_expires_at=row.lease_expires_at,
            health_checked_at=row.health_checked_at,
            last_error=row.last_error,
            updated_at=row.updated_at,
            quarantined_at=row.quarantined_at,
            quarantine_reason=row.quarantine_reason,
            personal_phone_id=row.personal_phone_id,
        )


class DeviceStore:
    """The ``devices`` table as the pool sees it; ``LeaseStore`` adds the leases on top."""

    def __init__(self, sessions: DbSessions, dialect: str, *, signal: Signal | None = None) -> None:
        if dialect not in _DIALECTS:
            raise ValueError(f"unsupported database dialect {dialect!r} (expected one of {_DIALECTS})")
        self._sessions = sessions
        self.dialect = dialect
        self.signal: Signal = signal or LocalSignal()
        # SQLite takes one writer at a time anyway; queueing this process's writers here rather than
        # in SQLite's busy handler (which sleeps up to 100 ms between tries) keeps lease latency low.
        self._sqlite_writer = asyncio.Lock() if dialect == "sqlite" else None

    @classmethod
    def for_engine(cls, engine: AsyncEngine, **kwargs: Any) -> Self:
        """A store on ``engine`` (its dialect decides the SQL)."""
        return cls(make_sessionmaker(engine), engine.dialect.name, **kwargs)

    @property
    def is_sqlite(self) -> bool:
        return self.dialect == "sqlite"

    async def close(self) -> None:
        """Close the wake-up signal (the engine is the caller's)."""
        await self.signal.close()

    @asynccontextmanager
    async def _tx(self) -> AsyncIterator[DbSession]:
        """One write transaction, committed on leaving the block (BEGIN IMMEDIATE on SQLite)."""
        if self._sqlite_writer is None:
            async with self._sessions.begin() as db_session:
                yield db_session
            return
        async with self._sqlite_writer, self._sessions.begin() as db_session:
            # Must come before the first statement: the option applies when the connection begins.
            await db_session.connection(execution_options={BEGIN_IMMEDIATE: True})
            yield db_session

    # --- reading --------------------------------------------------------------------------------

    async def devices(self, provider: str | None = None, *, retired: bool = False) -> list[DeviceRecord]:
        """Device rows (of ``provider`` if given), oldest first; retired ones only if asked."""
        query = select(Device).order_by(Device.created_at, Device.id)
        if provider is not None:
            query = query.where(Device.provider == provider)
        if not retired:
            query = query.where(Device.state != DeviceState.RETIRED)
        async with self._sessions() as db_session:
            return [DeviceRecord.of(row) for row in (await db_session.scalars(query)).all()]

    async def device(self, device_id: uuid.UUID) -> DeviceRecord | None:
        """One device row, or None."""
        async with self._sessions() as db_session:
            row = await db_session.get(Device, device_id)
            return None if row is None else DeviceRecord.of(row)

    # --- registering ----------------------------------------------------------------------------

    async def register(
        self, *, provider: str, serial: str, profile: dict[str, Any], labels: dict[str, Any] | None = None
    ) -> DeviceRecord:
        """The row for ``serial``: a new one in ``provisioning``, or the existing one with profile/labels updated.

        A retired row comes back as ``provisioning``; a live row keeps its state (a restarted manager
        must not take a leased phone from its holder).
        """
        labels = dict(labels or {})
        for _attempt in range(2):
            try:
                async with self._tx() as db_session:
                    row = await db_session.scalar(select(Device).where(Device.serial == serial))
                    if row is None:
                        row = Device(provider=provider, serial=serial, profile=profile, labels=labels)
                        db_session.add(row)
                        await db_session.flush()
                        logger.info("device registered", extra={"device_id": str(row.id), "serial": serial})
                    else:
                        # Assigned only when changed: an UPDATE bumps updated_at, the idle queue's order.
                        if (row.provider, row.profile, row.labels) != (provider, profile, labels):
                            row.provider, row.profile, row.labels = provider, dict(profile), labels
                        if row.state == DeviceState.RETIRED:
                            # A new phone at a retired address: nothing of the old one's record applies.
                            row.state = DeviceState.PROVISIONING
                            row.last_error = row.quarantined_at = row.quarantine_reason = None
                            logger.info("device back", extra={"device_id": str(row.id), "serial": serial})
                        await db_session.flush()
                    return DeviceRecord.of(row)
            except IntegrityError:
                # Another manager inserted the same serial between our SELECT and INSERT: read theirs.
                continue
        raise RuntimeError(f"could not register {serial}")  # pragma: no cover - needs two lost races

    # --- state changes --------------------------------------------------------------------------

    async def mark_idle(self, device_id: uuid.UUID) -> bool:
        """resetting/provisioning → idle (never from leased: a leased device is reset first, nor a
        quarantined one, nor one still running a personal phone's data); wakes waiters."""
        now = utcnow()
        changed = await self._transition(
            device_id, DeviceState.IDLE, _BEFORE_IDLE, _NOT_QUARANTINED, Device.personal_phone_id.is_(None),
            last_error=None, health_checked_at=now,
        )  # fmt: skip
        if changed:
            await self.signal.notify(IDLE)
        return changed

    async def mark_unhealthy(self, device_id: uuid.UUID, error: str) -> bool:
        """→ unhealthy with ``last_error``, unless the device is leased (its holder has it) or retired."""
        return await self._transition(
            device_id, DeviceState.UNHEALTHY, _NOT_LEASED, last_error=error[:2000], health_checked_at=utcnow()
        )

    async def mark_resetting(self, device_id: uuid.UUID) -> bool:
        """unhealthy/provisioning/idle → resetting: the manager will reset it before it is idle again.
        Never a quarantined device (``end_quarantine`` is its way back)."""
        return await self._transition(
            device_id,
            DeviceState.RESETTING,
            (DeviceState.UNHEALTHY, DeviceState.PROVISIONING, DeviceState.IDLE),
            _NOT_QUARANTINED,
        )

    async def quarantine(self, device_id: uuid.UUID, reason: str) -> bool:
        """→ unhealthy and quarantined with ``reason`` (also its ``last_error``), unless it is leased
        (its holder has it) or retired. From now on it is never idle, so never leased."""
        reason = reason[:2000]
        return await self._transition(
            device_id, DeviceState.UNHEALTHY, _NOT_LEASED, last_error=reason, health_checked_at=utcnow(),
            quarantined_at=utcnow(), quarantine_reason=reason,
        )  # fmt: skip

    async def end_quarantine(self, device_id: uuid.UUID) -> bool:
        """A quarantined (unhealthy) device → resetting, out of quarantine: reset and checked before it
        is idle again."""
        return await self._transition(
            device_id, DeviceState.RESETTING, (DeviceState.UNHEALTHY,), Device.quarantined_at.is_not(None),
            quarantined_at=None, quarantine_reason=None,
        )  # fmt: skip

    async def retire(self, device_id: uuid.UUID, reason: str = "") -> bool:
        """→ retired (the provider no longer has it), unless it is leased: that waits for the lease to end.
        A quarantined device keeps its ``quarantined_at`` and ``quarantine_reason`` as its record."""
        return await self._transition(
            device_id, DeviceState.RETIRED, _NOT_LEASED, last_error=reason[:2000] or None
        )

    async def touch_health(self, device_id: uuid.UUID) -> bool:
        """Record a passed health check on an idle device (its place in the idle queue is kept)."""
        async with self._tx() as db_session:
            result = await db_session.execute(
                update(Device)
                .where(Device.id == device_id, Device.state == DeviceState.IDLE)
                # updated_at orders the idle queue; a health check must not move the device to its back.
                .values(health_checked_at=utcnow(), updated_at=Device.updated_at)
                .execution_options(synchronize_session=False)
            )
            return result.rowcount == 1

    async def _transition(
        self,
        device_id: uuid.UUID,
        to: DeviceState,
        from_states: Iterable[DeviceState],
        *also: ColumnElement[bool],
        **values: Any,
    ) -> bool:
        from_states = tuple(from_states)
        async with self._tx() as db_session:
            result = await db_session.execute(
                update(Device)
                .where(Device.id == device_id, Device.state.in_(from_states), *also)
                .values(state=to, updated_at=utcnow(), **values)
                .returning(Device.serial)
                .execution_options(synchronize_session=False)
            )
            serial = result.scalar_one_or_none()
        extra = {"device_id": str(device_id), "serial": serial, "state": to.value}
        if serial is None:
            logger.debug("device not in %s; left as it is", [s.value for s in from_states], extra=extra)
            return False
        if values.get("last_error"):
            extra["error"] = values["last_error"]
        what = "quarantined" if values.get("quarantine_reason") else to.value
        logger.log(
            logging.WARNING if to == DeviceState.UNHEALTHY else logging.INFO, "device %s", what, extra=extra
        )
        return True


__all__ = ["DeviceRecord", "DeviceStore"]
