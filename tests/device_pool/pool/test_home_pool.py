"""A personal phone's home pool: where its data is local to a pool (redroid's volumes), the pool
that first woke it is the only one that wakes it again.

Two real pool managers with different ``pool_id``s over one database (each backend), each over
its own virtual phone with its own ``personal_root`` — the virtual phone standing in for a
provider whose data lives on its pool's host (``personal_data_local`` set on the instance: in
deployments its data folder is shared, so the class leaves it off).
"""

from __future__ import annotations

import asyncio
import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from device_pool.errors import PersonalPhoneWakeFailed
from device_pool.pool import POOL_LABEL, LeaseStore, PoolManager
from device_pool.pool.personal import PersonalPhoneLeases
from device_pool.providers.sim import SimProvider
from orchestrator.db import Device, DeviceState, PersonalPhone, PersonalPhoneState, utcnow
from tests.aio import run
from tests.databases import open_sessions
from tests.device_pool.providers.conftest import MakeSimProvider
from tests.orchestrator.factories import make_user


def _local(provider: SimProvider) -> SimProvider:
    provider.personal_data_local = True  # type: ignore[misc]
    return provider


async def _lease(leases: PersonalPhoneLeases, managers: list[PoolManager], phone_id: uuid.UUID,
                 tenant_id: uuid.UUID) -> Any:  # fmt: skip
    """Lease the personal phone while both managers' passes run beside it, as their pools' would."""
    waiting_lease = asyncio.ensure_future(leases.wait_acquire(
        phone_id, holder="test", tenant_id=tenant_id, ttl_s=60, timeout_s=30, wake_timeout_s=30,
    ))  # fmt: skip
    while not waiting_lease.done():
        for manager in managers:
            await manager.reconcile()
        await asyncio.sleep(0.02)
    return waiting_lease.result()


def test_a_personal_phone_wakes_only_on_its_home_pool(
    make_sim_provider: MakeSimProvider,
    pool_db_url: str,
    tmp_path: Path,
) -> None:
    a = _local(make_sim_provider(count=1, max_count=1, personal_root=tmp_path / "a"))
    b = _local(make_sim_provider(count=1, max_count=1, personal_root=tmp_path / "b"))

    async def scenario() -> None:
        async with open_sessions(pool_db_url) as sessions:
            store = LeaseStore(sessions, "sqlite" if pool_db_url.startswith("sqlite") else "postgresql")
            opts: dict[str, Any] = {"min_idle": 1, "max_devices": 1, "health_interval_s": 600,
                                    "reap_interval_s": 600, "personal_idle_stop_s": 3600}  # fmt: skip
            pool_a = PoolManager(store, a, pool_id="a", **opts)
            pool_b = PoolManager(store, b, pool_id="b", **opts)
            leases = PersonalPhoneLeases(store)
            async with sessions.begin() as s:
                user = await make_user(s)
                phone = PersonalPhone(tenant_id=user.tenant_id, user_id=user.id, name="p")
                s.add(phone)
                await s.flush()
                phone_id, tenant_id = phone.id, user.tenant_id

            async def read() -> tuple[PersonalPhone, dict[str, Device]]:
                async with sessions() as s:
                    p = await s.get(PersonalPhone, phone_id)
                    devices = (await s.scalars(select(Device).where(Device.state != DeviceState.RETIRED))).all()
                    assert p is not None
                    return p, {d.labels[POOL_LABEL]: d for d in devices}

            try:
                # Pool A alone at first: the phone's first wake is there.
                await a.start()
                await pool_a.sync_devices()
                first = await _lease(leases, [pool_a], phone_id, tenant_id)
                p, devices = await read()
                assert p.home_pool == "a" and first.grant.device_id == devices["a"].id
                (tmp_path / "a" / str(phone_id) / "marker").write_text("logged in")
                assert await store.release(first.grant.lease_id, "test")
                await pool_a.reconcile()
                p, devices = await read()
                assert p.state == PersonalPhoneState.READY
                await pool_a.personal.stop_idle(await pool_a._devices(), now=utcnow() + dt.timedelta(days=1))
                await pool_a.reconcile()
                assert (await read())[0].state == PersonalPhoneState.ASLEEP

                # Pool B comes up beside A: each sees its own rows (neither retires the other's).
                await b.start()
                await pool_b.sync_devices()
                await pool_a.reconcile()
                p, devices = await read()
                assert set(devices) == {"a", "b"}
                assert {d.state for d in devices.values()} == {DeviceState.IDLE}, "both pools' devices serve"

                # A's device busy with someone else: B's idle device is never picked for the phone.
                other = await store.acquire(holder="other", tenant_id=None, ttl_s=60, avoid=[devices["b"].id])
                assert other is not None and other.device_id == devices["a"].id
                assert await leases.acquire(phone_id, holder="test", tenant_id=tenant_id, ttl_s=60) is None
                assert await leases.home_pool(phone_id) == "a", "a waiting task's message names it"
                await pool_b.reconcile()
                p, devices = await read()
                assert p.state == PersonalPhoneState.ASLEEP and devices["b"].state == DeviceState.IDLE
                assert devices["b"].personal_phone_id is None

                # A's device free again: the phone wakes there, on its data; B never held it.
                assert await store.release(other.lease_id, "other")
                second = await _lease(leases, [pool_a, pool_b], phone_id, tenant_id)
                p, devices = await read()
                assert second.grant.device_id == devices["a"].id and p.state == PersonalPhoneState.IN_USE
                assert p.home_pool == "a"
                assert (tmp_path / "a" / str(phone_id) / "marker").read_text() == "logged in"
                assert not (tmp_path / "b" / str(phone_id)).exists(), "no empty copy on pool B"

                # The last guard: pool B's keeper refuses to attach a phone whose home is A.
                with pytest.raises(PersonalPhoneWakeFailed, match="home pool 'a'"):
                    await pool_b.personal._pin(p)
            finally:
                await a.close()
                await b.close()

    run(scenario(), timeout=120)
