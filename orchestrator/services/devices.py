"""The device pool as tenants see it: shared phones, with lease details only for one's own leases."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import Select, and_, select, tuple_

from orchestrator.db import Device, DeviceState, Lease
from orchestrator.errors import DeviceNotFound
from orchestrator.services.auth import Principal
from orchestrator.services.database import Database
from orchestrator.services.pagination import Page, decode_time_cursor, encode_time_cursor

__all__ = ["DeviceService", "DeviceView"]


@dataclass(frozen=True)
class DeviceView:
    """A device as one caller may see it.

    ``lease`` is set only when the device's current lease belongs to the caller's tenant;
    ``internal`` (serial, last error) only for admins, because an ADB address is infrastructure.
    """

    device: Device
    lease: Lease | None
    internal: bool


class DeviceService:
    """Read access to the pool, newest devices first."""

    def __init__(self, db: Database) -> None:
        self.db = db

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
        if cursor is not None:
            created_at, after_id = decode_time_cursor(cursor)
            query = query.where(tuple_(Device.created_at, Device.id) < tuple_(created_at, after_id))
        query = query.order_by(Device.created_at.desc(), Device.id.desc()).limit(limit + 1)
        async with self.db.transaction() as session:
            rows = (await session.execute(query)).all()
        more = len(rows) > limit
        views = [DeviceView(row.Device, row.Lease, principal.is_admin) for row in rows[:limit]]
        last = views[-1].device if more else None
        return Page(views, encode_time_cursor(last.created_at, last.id) if last else None)

    async def get(self, principal: Principal, device_id: uuid.UUID) -> DeviceView:
        """One device; raises ``DeviceNotFound``."""
        async with self.db.transaction() as session:
            row = (await session.execute(self._query(principal).where(Device.id == device_id))).first()
        if row is None:
            raise DeviceNotFound(device_id)
        return DeviceView(row.Device, row.Lease, principal.is_admin)
