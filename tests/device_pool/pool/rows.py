"""Rows and checks the pool tests share: seeding idle devices, and the no-double-lease check on the lease log."""

from __future__ import annotations

import datetime as dt
import itertools
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from device_pool.pool import LeaseStore
from orchestrator.db import Device, DeviceState, Event, Lease, make_engine, make_sessionmaker
from tests.orchestrator.factories import make_device, make_tenant

FAR_FUTURE = dt.datetime.max.replace(tzinfo=dt.UTC)


@asynccontextmanager
async def open_store(
    url: str, **store_options: Any
) -> AsyncIterator[tuple[LeaseStore, async_sessionmaker[AsyncSession]]]:
    """A LeaseStore on its own engine, and a sessionmaker on that engine; both closed afterwards."""
    engine = make_engine(url)
    store = LeaseStore.for_engine(engine, **store_options)
    try:
        yield store, make_sessionmaker(engine)
    finally:
        await store.close()
        await engine.dispose()


async def seed(
    sessions: async_sessionmaker[AsyncSession], devices: int, **device_fields: Any
) -> tuple[uuid.UUID, list[uuid.UUID]]:
    """A new tenant and ``devices`` idle devices; their ids."""
    async with sessions.begin() as s:
        tenant = await make_tenant(s)
        rows = [await make_device(s, **device_fields) for _ in range(devices)]
        return tenant.id, [row.id for row in rows]


async def lease_log(sessions: async_sessionmaker[AsyncSession]) -> list[Lease]:
    async with sessions() as s:
        return list((await s.scalars(select(Lease).order_by(Lease.acquired_at))).all())


async def device_states(sessions: async_sessionmaker[AsyncSession]) -> dict[uuid.UUID, DeviceState]:
    async with sessions() as s:
        return {row.id: DeviceState(row.state) for row in (await s.scalars(select(Device))).all()}


async def event_types(sessions: async_sessionmaker[AsyncSession]) -> list[tuple[str, dict[str, Any]]]:
    async with sessions() as s:
        return [(e.type, e.payload) for e in (await s.scalars(select(Event).order_by(Event.id))).all()]


def assert_no_overlap(leases: list[Lease]) -> None:
    """No device was ever leased twice at once: per device, each lease ends before the next begins."""
    by_device: dict[uuid.UUID, list[Lease]] = defaultdict(list)
    for lease in leases:
        by_device[lease.device_id].append(lease)
    for device_id, rows in by_device.items():
        rows.sort(key=lambda lease: lease.acquired_at)
        assert sum(lease.released_at is None for lease in rows) <= 1, f"two open leases on {device_id}"
        for earlier, later in itertools.pairwise(rows):
            ended = earlier.released_at or FAR_FUTURE
            assert ended <= later.acquired_at, f"leases {earlier.id} and {later.id} overlap on {device_id}"
