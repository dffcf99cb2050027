"""PoolManager with real SimProvider phones and real databases: sync, reset after a lease, min_idle, recovery."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from device_pool.driver import AdbDevice
from device_pool.pool import DeviceRecord, LeaseStore, LocalSignal, PoolManager, RedisSignal
from device_pool.providers import SimProvider, SimProviderConfig
from orchestrator.db import DeviceState, make_engine, make_sessionmaker
from tests.aio import run
from tests.conftest import REDIS_URL, ReservePorts
from tests.device_pool.providers.conftest import MakeSimProvider
from tests.orchestrator.factories import make_tenant
from tests.processes import AdbServer

LAUNCHER = "com.android.launcher3"
SLOW = 600.0  # intervals long enough that only the code path under test can explain a prompt result


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def new_tenant(engine) -> object:
    async with make_sessionmaker(engine).begin() as s:
        return (await make_tenant(s)).id


async def reconcile_until(
    manager: PoolManager, done: Callable[[list[DeviceRecord]], bool], timeout: float = 20
) -> list[DeviceRecord]:
    """Run reconcile passes until ``done(rows)``: each pass is the work under test, not a wait."""
    deadline = time.monotonic() + timeout
    while True:
        await manager.reconcile()
        rows = await manager.store.devices(manager.provider.name)
        if done(rows):
            return rows
        assert time.monotonic() < deadline, f"not reconciled within {timeout} s: {rows}"


async def dirty(phone: AdbDevice) -> None:
    """What a user leaves behind: Wi-Fi off, a file on /sdcard, Settings in front."""
    await phone.connect(timeout=30)
    await phone.shell("settings put global wifi_on 0", check=True)
    await phone.push(b"the previous user's secret", "/sdcard/Download/x.txt")
    await phone.launch("Settings")


async def factory_view(phone: AdbDevice) -> tuple[str, bool, str]:
    """(wifi_on, whether x.txt is on /sdcard, foreground package)."""
    await phone.connect(timeout=30)
    wifi = (await phone.shell("settings get global wifi_on", check=True)).stdout.strip()
    listing = (await phone.shell("ls /sdcard/Download")).stdout
    package, _activity = await phone.foreground()
    return wifi, "x.txt" in listing, package


def test_sync_lease_release_reset_idle(
    pool_db_url: str, make_sim_provider: MakeSimProvider, adb_device: Callable[[str], AdbDevice]
) -> None:
    provider = make_sim_provider(count=2, max_count=2)

    async def body() -> None:
        engine = make_engine(pool_db_url)
        store = LeaseStore.for_engine(engine)
        manager = PoolManager(store, provider, min_idle=0, max_devices=2, health_interval_s=SLOW)
        try:
            specs = await provider.start()
            rows = await manager.sync_devices()
            assert sorted(r.serial for r in rows) == sorted(s.serial for s in specs)
            assert {r.state for r in rows} == {DeviceState.IDLE}
            assert all(r.profile["android"] == "13" and r.profile["width"] == 720 for r in rows)
            assert all(r.health_checked_at is not None for r in rows)

            grant = await store.acquire(holder="w1", tenant_id=await new_tenant(engine), ttl_s=60)
            phone = adb_device(grant.serial)
            await dirty(phone)
            assert await factory_view(phone) == ("0", True, "com.android.settings")
            pid = provider.pid(grant.serial)
            await store.release(grant.lease_id, "w1", "done")
            assert (await store.device(grant.device_id)).state == DeviceState.RESETTING

            await manager.reconcile()
            assert (await store.device(grant.device_id)).state == DeviceState.IDLE
            assert await factory_view(phone) == ("1", False, LAUNCHER)
            assert provider.pid(grant.serial) == pid  # reset over adb, not a restart

            # A phone the provider no longer has is retired; a second sync changes nothing else.
            other = next(s.serial for s in specs if s.serial != grant.serial)
            await provider.destroy(other)
            rows = await manager.sync_devices()
            assert [(r.serial, r.state) for r in rows] == [(grant.serial, DeviceState.IDLE)]
            retired = [r for r in await store.devices(retired=True) if r.state == DeviceState.RETIRED]
            assert [r.serial for r in retired] == [other]
        finally:
            await store.close()
            await engine.dispose()

    run(body(), timeout=120)


def test_min_idle_creates_phones_up_to_max(pool_db_url: str, make_sim_provider: MakeSimProvider) -> None:
    provider = make_sim_provider(count=0, max_count=3)

    async def body() -> None:
        engine = make_engine(pool_db_url)
        store = LeaseStore.for_engine(engine)
        manager = PoolManager(store, provider, min_idle=1, max_devices=2, health_interval_s=SLOW)
        try:
            tenant_id = await new_tenant(engine)
            await manager.reconcile()
            [row] = await store.devices()
            assert row.state == DeviceState.IDLE and [s.serial for s in await provider.list()] == [row.serial]
            await manager.reconcile()
            assert len(await store.devices()) == 1  # one idle is enough

            await store.acquire(holder="w1", tenant_id=tenant_id, ttl_s=60)
            await manager.reconcile()  # none idle: another phone
            rows = await store.devices()
            assert sorted(r.state for r in rows) == [DeviceState.IDLE, DeviceState.LEASED]

            await store.acquire(holder="w2", tenant_id=tenant_id, ttl_s=60)
            await manager.reconcile()  # none idle again, but max_devices=2 caps the pool
            assert len(await store.devices()) == 2 and len(await provider.list()) == 2
        finally:
            await store.close()
            await engine.dispose()

    run(body(), timeout=120)


def test_killed_phone_is_detected_and_recovered(
    pool_db_url: str, make_sim_provider: MakeSimProvider, caplog: pytest.LogCaptureFixture
) -> None:
    provider = make_sim_provider(count=1, max_count=1)

    async def body() -> None:
        engine = make_engine(pool_db_url)
        store = LeaseStore.for_engine(engine)
        # Every pass health-checks idle phones; backoff is capped at the same 10 ms.
        manager = PoolManager(store, provider, min_idle=0, max_devices=1, health_interval_s=0.01)
        try:
            await provider.start()
            [row] = await manager.sync_devices()
            pid = provider.pid(row.serial)
            os.kill(pid, signal.SIGKILL)
            [row] = await reconcile_until(manager, lambda rows: rows[0].state == DeviceState.UNHEALTHY)
            assert "health check failed" in row.last_error
            [row] = await reconcile_until(manager, lambda rows: rows[0].state == DeviceState.IDLE)
            new_pid = provider.pid(row.serial)
            assert new_pid is not None and new_pid != pid and pid_alive(new_pid)
            assert (await provider.health(row.serial)).ok
            assert row.last_error is None
        finally:
            await store.close()
            await engine.dispose()

    run(body(), timeout=120)
    unhealthy = [r for r in caplog.records if getattr(r, "state", None) == "unhealthy"]
    assert unhealthy and unhealthy[0].levelname == "WARNING" and unhealthy[0].serial


def test_a_phone_that_cannot_restart_is_replaced(
    pool_db_url: str, tmp_path: Path, adb_server: AdbServer, reserve_ports: ReservePorts
) -> None:
    """Killed, and its port taken by another program: resets fail, so it is destroyed and a new one made."""
    config = SimProviderConfig(
        data_root=tmp_path / "phones", base_port=reserve_ports(2), count=1, max_count=2,
        adb_port=adb_server.port, width=720, height=1600, density=320,
        start_timeout_s=2,  # how long each failed restart takes: the squatter accepts, never answers
    )  # fmt: skip
    provider = SimProvider(config)

    async def body() -> None:
        engine = make_engine(pool_db_url)
        store = LeaseStore.for_engine(engine)
        manager = PoolManager(
            store, provider, min_idle=0, max_devices=2, health_interval_s=0.01, max_reset_failures=2
        )
        squatter = socket.socket()
        try:
            await provider.start()
            [broken] = await manager.sync_devices()
            os.kill(provider.pid(broken.serial), signal.SIGKILL)
            await reconcile_until(manager, lambda rows: rows[0].state == DeviceState.UNHEALTHY)
            squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            squatter.bind(("127.0.0.1", int(broken.serial.rsplit(":", 1)[1])))
            squatter.listen()

            rows = await reconcile_until(
                manager, lambda rows: any(r.state == DeviceState.IDLE and r.id != broken.id for r in rows)
            )
            assert broken.id not in {r.id for r in rows}  # retired
            assert [s.serial for s in await provider.list()] == [r.serial for r in rows]
            assert (await store.device(broken.id)).state == DeviceState.RETIRED
        finally:
            squatter.close()
            await provider.close()
            await store.close()
            await engine.dispose()

    run(body(), timeout=150)


@pytest.mark.parametrize("redis", [False, True], ids=["in-process", "redis"])
def test_waiter_gets_the_phone_once_the_running_manager_reset_it(
    pool_db_url: str, make_sim_provider: MakeSimProvider, redis_prefix: str, redis: bool
) -> None:
    """The manager's loop runs with 10-minute intervals: only the release wake-up can make it reset promptly,
    and only the idle wake-up can hand the phone to the waiter before its 10-minute poll."""
    provider = make_sim_provider(count=1, max_count=1)

    async def body() -> None:
        engines = [make_engine(pool_db_url) for _ in range(2)]
        if redis:
            # The manager and the waiter as two processes: own engines, own Redis subscribers.
            manager_store = LeaseStore.for_engine(
                engines[0], signal=RedisSignal(REDIS_URL, prefix=redis_prefix), poll_s=SLOW
            )
            waiter_store = LeaseStore.for_engine(
                engines[1], signal=RedisSignal(REDIS_URL, prefix=redis_prefix), poll_s=SLOW
            )
        else:
            # One process: one store, its in-process signal.
            manager_store = waiter_store = LeaseStore.for_engine(
                engines[0], signal=LocalSignal(), poll_s=SLOW
            )
        manager = PoolManager(
            manager_store, provider, min_idle=0, max_devices=1, health_interval_s=SLOW, reap_interval_s=SLOW
        )
        task = None
        try:
            await provider.start()
            await manager.sync_devices()
            tenant_id = await new_tenant(engines[0])
            held = await waiter_store.acquire(holder="first", tenant_id=tenant_id, ttl_s=60)
            task = asyncio.create_task(manager.run())
            waiter = asyncio.create_task(
                waiter_store.wait_acquire(holder="second", tenant_id=tenant_id, ttl_s=60, timeout_s=SLOW)
            )
            started = time.monotonic()
            await waiter_store.release(held.lease_id, "first")
            grant = await asyncio.wait_for(waiter, 30)
            assert grant.device_id == held.device_id and grant.holder == "second"
            assert time.monotonic() - started < 10
        finally:
            manager.stop()
            if task is not None:
                await asyncio.wait_for(task, 30)
            for store in {id(s): s for s in (manager_store, waiter_store)}.values():
                await store.close()
            for engine in engines:
                await engine.dispose()

    run(body(), timeout=120)
