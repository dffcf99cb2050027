"""The device pool as tenants see it (shared phones, lease details only for one's own leases, ADB
serials only for the operator), and the operator's changes: registering a static ADB phone,
draining, undraining and retiring (docs/security.md, "Roles"); each change is audited in its own
transaction (``services/audit.py``).

Each operator change reads and writes the device row under its lock (``FOR UPDATE``; SQLite's write
lock), so it races safely with the pool: an ``acquire`` skips the locked row, or wins and is seen.

- **register**: a row with provider ``static`` in ``provisioning``; the ``RegisteredAdbProvider``
  manager that ``phonefleet pool`` runs beside its own brings it to ``idle`` (``device_pool/providers/registered.py``).
- **drain**: ``labels.drain = true``; ``LeaseStore.acquire`` skips such a device, so a leased phone
  finishes its lease, is reset to ``idle`` as usual, and is never leased again until **undrain**.
- **retire**: a registered (``static``) phone that is not leased → ``retired`` at once; a leased one is
  a 409 (drain it). A sim or devices-file phone is a 409 too: its pool manager would register it
  again on its next pass, since its provider still has it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Select, and_, select
from sqlalchemy.exc import IntegrityError

from device_pool.pool import DRAIN_LABEL, IDLE, Signal
from device_pool.providers.registered import REGISTERED
from orchestrator.db import Device, DeviceState, Lease
from orchestrator.db.database import Database
from orchestrator.db.pagination import Page, newest_first, time_page
from orchestrator.errors import DeviceExists, DeviceNotFound, InvalidTransition
from orchestrator.services.audit import record_audit
from orchestrator.services.auth import Principal, require_operator

_OPERATOR_ONLY = "only the operator changes the shared fleet's devices"

__all__ = ["DeviceService", "DeviceView"]


@dataclass(frozen=True)
class DeviceView:
    """A device as one caller may see it.

    ``lease`` is set only when the device's current lease belongs to the caller's tenant;
    ``internal`` (serial, last error) only for the operator: an ADB address is infrastructure, and a
    tenant reaches its phones' adb through a session's tunnel (docs/security.md, "ADB tunnel").
    """

    device: Device
    lease: Lease | None
    internal: bool


class DeviceService:
    """Read access to the pool, newest devices first; the operator's changes (refused to anyone else)."""

    def __init__(self, db: Database, signal: Signal | None = None) -> None:
        self.db = db
        self.signal = signal  # wakes lease waiters when an undrained phone is idle

    def _query(self, principal: Principal) -> Select[tuple[Device, Lease]]:
        # An outer join that only matches the caller's own open lease: other tenants' stay hidden.
        own_lease = and_(
            Lease.id == Device.lease_id, Lease.tenant_id == principal.tenant_id, Lease.released_at.is_(None)
        )
        return select(Device, Lease).outerjoin(Lease, own_lease)

    async def list(
        self, principal: Principal, *, state: DeviceState | None, limit: int, cursor: str | None
    ) -> Page[DeviceView]:
        """Devices, ``limit`` at a time; raises ``InvalidCursor``."""
        query = self._query(principal)
        if state is not None:
            query = query.where(Device.state == state)
        query = newest_first(query, Device, cursor=cursor, limit=limit)
        async with self.db.transaction() as db_session:
            rows = (await db_session.execute(query)).all()
        views = [DeviceView(row.Device, row.Lease, principal.is_operator) for row in rows]
        return time_page(views, limit, lambda view: view.device)

    async def get(self, principal: Principal, device_id: uuid.UUID) -> DeviceView:
        """One device; raises ``DeviceNotFound``."""
        async with self.db.transaction() as db_session:
            row = (await db_session.execute(self._query(principal).where(Device.id == device_id))).first()
        if row is None:
            raise DeviceNotFound(device_id)
        return DeviceView(row.Device, row.Lease, principal.is_operator)

    # --- the operator's changes (the route checks the role too) -----------------------------------

    async def register(
        self, principal: Principal, *, serial: str, profile: dict[str, Any], labels: dict[str, str]
    ) -> DeviceView:
        """A static ADB phone (provider ``static``) in ``provisioning``; raises ``DeviceExists``.

        A retired row with the same serial comes back under the new profile and labels; any other
        row with it is a conflict.
        """
        require_operator(principal, _OPERATOR_ONLY)
        try:
            async with self.db.transaction(write=True) as db_session:
                row = await db_session.scalar(select(Device).where(Device.serial == serial).with_for_update())
                if row is not None and row.state != DeviceState.RETIRED:
                    raise DeviceExists(
                        f"device {serial!r} is already in the pool (id {row.id}, {row.provider}, {row.state.value})",
                        context={"device_id": str(row.id)},
                    )
                if row is None:
                    row = Device(serial=serial)
                    db_session.add(row)
                row.provider, row.state, row.last_error = REGISTERED, DeviceState.PROVISIONING, None
                row.quarantined_at = row.quarantine_reason = None  # a new registration starts clean
                row.profile, row.labels = profile, labels
                await db_session.flush()
                device_id = row.id
                await record_audit(db_session, principal, "device.register", target=f"device:{device_id}",
                                   detail={"serial": serial, "labels": labels})  # fmt: skip
        except IntegrityError as exc:  # a concurrent registration of the same serial won
            raise DeviceExists(f"device {serial!r} is already in the pool") from exc
        return await self.get(principal, device_id)

    async def drain(self, principal: Principal, device_id: uuid.UUID) -> DeviceView:
        """No new leases: ``labels.drain = true`` (a current lease runs to its end)."""
        await self._set_drain(principal, device_id, True)
        return await self.get(principal, device_id)

    async def undrain(self, principal: Principal, device_id: uuid.UUID) -> DeviceView:
        """Back in service: the drain label removed; lease waiters are woken if it is idle."""
        if await self._set_drain(principal, device_id, False) == DeviceState.IDLE and self.signal is not None:
            await self.signal.notify(IDLE)
        return await self.get(principal, device_id)

    async def retire(self, principal: Principal, device_id: uuid.UUID) -> DeviceView:
        """A registered phone out of the pool for good; raises ``InvalidTransition`` (409) when it
        is leased or belongs to a provider that would bring it back. Retiring it again is a no-op."""
        require_operator(principal, _OPERATOR_ONLY)
        async with self.db.transaction(write=True) as db_session:
            row = await db_session.scalar(select(Device).where(Device.id == device_id).with_for_update())
            if row is None:
                raise DeviceNotFound(device_id)
            if row.state != DeviceState.RETIRED:
                if row.provider != REGISTERED:
                    raise InvalidTransition(
                        f"device {device_id} belongs to provider {row.provider!r}, whose pool manager "
                        "registers it again while the provider has it: drain it, or remove it from "
                        "the provider (its devices file or count)",
                        current=row.state.value, requested="retire",
                    )  # fmt: skip
                if row.state == DeviceState.LEASED:
                    raise InvalidTransition(
                        f"device {device_id} is leased; drain it so it takes no new lease, then "
                        "retire it once its lease has ended",
                        current=row.state.value, requested="retire",
                    )  # fmt: skip
                row.state = DeviceState.RETIRED
                row.last_error = "retired by the operator"
                await record_audit(db_session, principal, "device.retire", target=f"device:{device_id}",
                                   detail={"serial": row.serial})  # fmt: skip
        return await self.get(principal, device_id)

    async def _set_drain(self, principal: Principal, device_id: uuid.UUID, drain: bool) -> DeviceState:
        """Set or clear the drain label under the row's lock, audited; the device's state."""
        require_operator(principal, _OPERATOR_ONLY)
        async with self.db.transaction(write=True) as db_session:
            row = await db_session.scalar(select(Device).where(Device.id == device_id).with_for_update())
            if row is None:
                raise DeviceNotFound(device_id)
            labels = {k: v for k, v in (row.labels or {}).items() if k != DRAIN_LABEL}
            if drain:
                labels[DRAIN_LABEL] = True
            if labels != row.labels:
                # A new dict: JSON columns do not track in-place changes. (updated_at moves too,
                # which only reorders the idle queue.)
                row.labels = labels
            await record_audit(db_session, principal, "device.drain" if drain else "device.undrain",
                               target=f"device:{device_id}", detail={"state": row.state.value})  # fmt: skip
            return row.state

