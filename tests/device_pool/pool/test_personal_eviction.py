"""Evicting a ready personal phone early: the pool at ``max_devices``, a task waiting for a device
puts an idle ready phone to sleep at once (not after ``idle_stop_s``); an in-use one is never taken.

A real pool manager over one virtual phone (``max_devices=1``) and a real SQLite database; the
waiting tasks are rows as a worker writes them (``waiting.kind`` ``no_device``, or
``personal_phone_busy`` for an asleep personal phone).
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from device_pool.pool import LeaseStore, PoolManager
from device_pool.pool.personal import PersonalPhoneLeases
from orchestrator.db import (
    Device,
    PersonalPhone,
    PersonalPhoneState,
    Task,
    TaskStatus,
    WaitingKind,
    utcnow,
    waiting,
)
from tests.aio import run
from tests.databases import migrate_to_head, open_sessions, sqlite_url

# Reused, not copied: the providers' fixtures (their conftest is not above this folder).
from tests.device_pool.providers.conftest import MakeSimProvider, make_sim_provider  # noqa: F401
from tests.orchestrator.factories import make_task, make_user


async def _lease(leases: PersonalPhoneLeases, manager: PoolManager, phone_id: uuid.UUID, tenant_id: uuid.UUID) -> Any:
    """Lease the personal phone while the manager's passes run beside it, as `phonefleet pool`'s would."""
    waiting_lease = asyncio.ensure_future(leases.wait_acquire(
        phone_id, holder="test", tenant_id=tenant_id, ttl_s=60, timeout_s=30, wake_timeout_s=30,
    ))  # fmt: skip
    while not waiting_lease.done():
        await manager.reconcile()
        await asyncio.sleep(0.02)
    return waiting_lease.result()


def test_a_waiting_task_puts_a_ready_personal_phone_to_sleep_early_never_an_in_use_one(
    make_sim_provider: MakeSimProvider,  # noqa: F811
    tmp_path: Path,
) -> None:
    url = sqlite_url(tmp_path / "pool.db")
    migrate_to_head(url)
    provider = make_sim_provider(count=1, max_count=1, personal_root=tmp_path / "personal")

    async def scenario() -> None:
        async with open_sessions(url) as sessions:
            store = LeaseStore(sessions, "sqlite")
            # idle_stop_s far away: only eviction can put P to sleep in this test.
            manager = PoolManager(store, provider, min_idle=1, max_devices=1, health_interval_s=600,
                                  reap_interval_s=600, personal_idle_stop_s=3600)  # fmt: skip
            leases = PersonalPhoneLeases(store)
            async with sessions.begin() as s:
                user = await make_user(s)
                phone = PersonalPhone(tenant_id=user.tenant_id, user_id=user.id, name="p")
                s.add(phone)
                await s.flush()
                phone_id, tenant_id = phone.id, user.tenant_id

            async def read() -> tuple[PersonalPhone, Device]:
                async with sessions() as s:
                    p = await s.get(PersonalPhone, phone_id)
                    (d,) = [d for d in (await s.scalars(select(Device))).all() if d.state.value != "retired"]
                    assert p is not None
                    return p, d

            try:
                await provider.start()
                await manager.sync_devices()
                first = await _lease(leases, manager, phone_id, tenant_id)
                assert await store.release(first.grant.lease_id, "test")
                await manager.reconcile()
                p, d = await read()
                assert p.state == PersonalPhoneState.READY and d.personal_phone_id == phone_id

                # No task waits: a ready phone keeps its device.
                await manager.reconcile()
                assert (await read())[0].state == PersonalPhoneState.READY, "no demand, no eviction"

                # A task waits for a device, the pool is at max_devices: P sleeps now.
                async with sessions.begin() as s:
                    task = await make_task(s, status=TaskStatus.RUNNING,
                                           waiting=waiting(WaitingKind.NO_DEVICE, "no idle device", utcnow()))  # fmt: skip
                await manager.reconcile()
                p, d = await read()
                assert p.state == PersonalPhoneState.ASLEEP and p.device_id is None
                assert d.personal_phone_id is None and d.state.value == "idle", "its device serves the pool"

                # P in use (woken again on the only device): the waiting task does not take it.
                second = await _lease(leases, manager, phone_id, tenant_id)
                for _ in range(2):
                    await manager.reconcile()
                p, d = await read()
                assert p.state == PersonalPhoneState.IN_USE and d.personal_phone_id == phone_id
                assert d.state.value == "leased" and d.lease_id == second.grant.lease_id

                # Its lease ends after the task got a device (no longer waiting): kept for P, ready.
                async with sessions.begin() as s:
                    await s.execute(update(Task).where(Task.id == task.id).values(waiting=None))
                assert await store.release(second.grant.lease_id, "test")
                await manager.reconcile()
                assert (await read())[0].state == PersonalPhoneState.READY, "the task moved: no eviction"

                # A task waits for another personal phone, Q, asleep: Q needs a pooled device to wake on.
                async with sessions.begin() as s:
                    q = PersonalPhone(tenant_id=tenant_id, user_id=user.id, name="q")
                    s.add(q)
                    await s.flush()
                    for _ in range(2):  # two tasks on Q: one device wakes it
                        await make_task(s, status=TaskStatus.RUNNING, personal_phone_id=q.id,
                                        waiting=waiting(WaitingKind.PERSONAL_PHONE_BUSY, "no device", utcnow()))  # fmt: skip
                await manager.reconcile()
                p, d = await read()
                assert p.state == PersonalPhoneState.ASLEEP and d.personal_phone_id is None, "P made room for Q"
            finally:
                await provider.close()

    run(scenario(), timeout=120)
