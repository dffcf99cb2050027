"""Quarantine: a phone that stops answering is taken out of the pool with its reason, never leased again,
and replaced (phones the pool makes) or given another chance after the quarantine period (static phones)."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from device_pool.pool import DEVICE_ERROR, PoolManager
from device_pool.providers import SimProvider, SimProviderConfig
from device_pool.providers.base import DeviceProfile
from device_pool.providers.static_adb import StaticAdbConfig, StaticAdbProvider, StaticDevice
from orchestrator.db import DeviceState
from tests.aio import run
from tests.conftest import ReservePorts
from tests.databases import migrate_to_head, sqlite_url
from tests.device_pool.pool.rows import open_store, seed
from tests.device_pool.pool.test_manager import pid_alive, reconcile_until
from tests.processes import AdbServer, SimPhones

REASON = "health check failed: no answer within 2 s (2 failures in a row)"


@pytest.fixture
def sqlite_pool_url(tmp_path: Path) -> Iterator[str]:
    """A migrated SQLite database of this test's own: for manager tests where the backend is not the point."""
    url = sqlite_url(tmp_path / "pool.db")
    migrate_to_head(url)
    yield url


def test_a_quarantined_device_is_never_leased_and_keeps_its_record(pool_db_url: str) -> None:
    async def body() -> None:
        async with open_store(pool_db_url) as (store, sessions):
            tenant_id, (bad, good) = await seed(sessions, 2)
            assert await store.quarantine(bad, REASON)
            row = await store.device(bad)
            assert row is not None and row.state == DeviceState.UNHEALTHY and row.quarantined
            assert row.quarantine_reason == REASON and row.last_error == REASON

            # Nothing moves it towards idle, so no acquire can pick it.
            assert not await store.mark_resetting(bad)
            assert not await store.mark_idle(bad)
            first = await store.acquire(holder="w1", tenant_id=tenant_id, ttl_s=60)
            assert first is not None and first.device_id == good
            assert await store.acquire(holder="w2", tenant_id=tenant_id, ttl_s=60) is None
            # A leased device is its holder's: never quarantined under it.
            assert not await store.quarantine(good, REASON)
            assert (await store.device(good)).quarantined_at is None

            # Another chance (a phone the provider cannot replace): reset and checked before it is idle.
            assert await store.end_quarantine(bad)
            assert not await store.end_quarantine(bad)  # only a quarantined device
            back = await store.device(bad)
            assert (
                back.state == DeviceState.RESETTING
                and not back.quarantined
                and back.quarantine_reason is None
            )
            assert await store.mark_idle(bad)
            second = await store.acquire(holder="w2", tenant_id=tenant_id, ttl_s=60)
            assert second is not None and second.device_id == bad
            assert await store.release(second.lease_id, "w2")

            # Replaced: the retired row keeps the record, until a new phone takes its address.
            assert await store.quarantine(bad, REASON)
            assert await store.retire(bad, "quarantined and replaced")
            retired = await store.device(bad)
            assert retired.state == DeviceState.RETIRED and retired.quarantine_reason == REASON
            assert retired.quarantined_at is not None
            new = await store.register(
                provider=retired.provider, serial=retired.serial, profile=retired.profile
            )
            assert new.id == bad and new.state == DeviceState.PROVISIONING
            assert (new.quarantined_at, new.quarantine_reason, new.last_error) == (None, None, None)

    run(body(), timeout=60)


def test_a_phone_that_hangs_again_after_its_restart_is_quarantined_and_replaced(
    sqlite_pool_url: str, tmp_path: Path, adb_server: AdbServer, reserve_ports: ReservePorts
) -> None:
    """Its adbd stops answering (SIGSTOP): the reset restarts it; it hangs again before serving a lease,
    so it is quarantined with the reason, never leased, and a new phone takes its place."""
    config = SimProviderConfig(
        data_root=tmp_path / "phones", base_port=reserve_ports(2), count=1, max_count=2,
        adb_port=adb_server.port, width=720, height=1600, density=320,
        # Short deadlines: each is a wait on a phone that will never answer.
        health_timeout_s=2, command_timeout_s=3, stop_timeout_s=2,
    )  # fmt: skip
    provider = SimProvider(config)
    stopped: list[int] = []

    def hang(pid: int | None) -> int:
        assert pid is not None
        os.kill(pid, signal.SIGSTOP)  # a phone process this test's provider started
        stopped.append(pid)
        return pid

    async def body() -> None:
        async with open_store(sqlite_pool_url) as (store, sessions):
            tenant_id, _ = await seed(sessions, 0)
            # Every pass health-checks idle phones; min_idle=0: only the replacement makes a phone.
            manager = PoolManager(store, provider, min_idle=0, max_devices=2, health_interval_s=0.01)
            await provider.start()
            [row] = await manager.sync_devices()
            first = hang(provider.pid(row.serial))

            [row] = await reconcile_until(manager, lambda rows: rows[0].state == DeviceState.UNHEALTHY)
            assert not row.quarantined and "no answer" in (row.last_error or "")
            [row] = await reconcile_until(manager, lambda rows: rows[0].state == DeviceState.IDLE, timeout=60)
            second = provider.pid(row.serial)
            assert second is not None and second != first and not pid_alive(first)  # restarted

            hang(second)
            rows = await reconcile_until(
                manager,
                lambda rows: any(r.state == DeviceState.IDLE and r.id != row.id for r in rows),
                timeout=60,
            )
            old = await store.device(row.id)
            assert old.state == DeviceState.RETIRED and old.quarantined_at is not None
            reason = old.quarantine_reason or ""
            assert "no answer" in reason and "failed again after it was recovered" in reason, reason
            [new] = rows
            assert new.serial != row.serial and not new.quarantined
            assert [s.serial for s in await provider.list()] == [new.serial]
            assert not pid_alive(second)  # the hung phone was destroyed

            grant = await store.acquire(holder="w1", tenant_id=tenant_id, ttl_s=60)
            assert grant is not None and grant.device_id == new.id
            assert await store.acquire(holder="w2", tenant_id=tenant_id, ttl_s=60) is None

    try:
        run(body(), timeout=180)
    finally:
        # A hung phone the provider still runs takes its SIGTERM once continued (destroyed ones are gone).
        for spec in run(provider.list()):
            if (pid := provider.pid(spec.serial)) in stopped:
                os.kill(pid, signal.SIGCONT)
        run(provider.close())


def test_a_static_phone_waits_out_its_quarantine_then_gets_another_chance(
    sqlite_pool_url: str, adb_server: AdbServer, fresh_phone: SimPhones
) -> None:
    """A phone the pool cannot replace stays quarantined (never leased) even once it answers again,
    until ``quarantine_s`` has passed; then it is reset and checked, and back in the pool."""
    config = StaticAdbConfig(
        devices=(StaticDevice(serial=fresh_phone.serial(), profile=DeviceProfile()),),
        adb_port=adb_server.port, connect_timeout_s=5, command_timeout_s=3, health_timeout_s=2,
    )  # fmt: skip
    provider = StaticAdbProvider(config)
    pid = fresh_phone.proc.pid

    async def body() -> None:
        async with open_store(sqlite_pool_url) as (store, sessions):
            tenant_id, _ = await seed(sessions, 0)
            manager = PoolManager(
                store, provider, min_idle=0, max_devices=0, health_interval_s=0.01,
                recreate_unhealthy=False, max_reset_failures=2, quarantine_s=600,
            )  # fmt: skip
            await provider.start()
            [row] = await manager.sync_devices()
            assert row.state == DeviceState.IDLE

            os.kill(pid, signal.SIGSTOP)  # this test's own phone process
            try:
                [row] = await reconcile_until(manager, lambda rows: rows[0].quarantined, timeout=60)
            finally:
                os.kill(pid, signal.SIGCONT)
            assert row.state == DeviceState.UNHEALTHY
            assert "2 failures in a row" in (row.quarantine_reason or ""), row.quarantine_reason

            # It answers again, but ten minutes of quarantine are left: a pass leaves it out.
            await manager.reconcile()
            assert (await store.device(row.id)).quarantined
            assert await store.acquire(holder="w1", tenant_id=tenant_id, ttl_s=60) is None

            manager.quarantine_s = 0  # as if the period had passed
            [row] = await reconcile_until(manager, lambda rows: rows[0].state == DeviceState.IDLE, timeout=60)
            assert not row.quarantined
            grant = await store.acquire(holder="w1", tenant_id=tenant_id, ttl_s=60)
            assert grant is not None and grant.device_id == row.id

    try:
        run(body(), timeout=180)
    finally:
        run(provider.close())


def test_a_phone_whose_runs_keep_failing_is_quarantined_though_its_resets_pass(
    sqlite_pool_url: str, tmp_path: Path, adb_server: AdbServer, reserve_ports: ReservePorts
) -> None:
    """Runs on a phone that end with it unreachable release their lease ``device_error``; a reset
    and check pass in between, yet after ``max_reset_failures`` such runs in a row it is quarantined
    (reason recorded) and replaced, and a run that ended otherwise in between starts the count again."""
    config = SimProviderConfig(
        data_root=tmp_path / "phones", base_port=reserve_ports(2), count=1, max_count=2,
        adb_port=adb_server.port, width=720, height=1600, density=320,
    )  # fmt: skip
    provider = SimProvider(config)

    async def body() -> None:
        async with open_store(sqlite_pool_url) as (store, sessions):
            tenant_id, _ = await seed(sessions, 0)
            manager = PoolManager(store, provider, min_idle=0, max_devices=2, max_reset_failures=2)
            await provider.start()
            [row] = await manager.sync_devices()

            async def run_ending(reason: str) -> None:
                grant = await store.acquire(holder="w", tenant_id=tenant_id, ttl_s=60)
                assert grant is not None and grant.device_id == row.id
                assert await store.release(grant.lease_id, "w", reason)

            def idle_again(rows: list) -> bool:
                return any(r.id == row.id and r.state == DeviceState.IDLE for r in rows)

            for reason in (DEVICE_ERROR, "released", DEVICE_ERROR):
                await run_ending(reason)
                await reconcile_until(manager, idle_again, timeout=60)
            assert not (await store.device(row.id)).quarantined  # not two device_error runs in a row

            await run_ending(DEVICE_ERROR)
            rows = await reconcile_until(
                manager,
                lambda rows: any(r.state == DeviceState.IDLE and r.id != row.id for r in rows),
                timeout=60,
            )
            old = await store.device(row.id)
            assert old.state == DeviceState.RETIRED and old.quarantined_at is not None
            assert "last 2 runs ended with the phone unreachable" in (old.quarantine_reason or ""), old
            [new] = rows
            assert new.serial != row.serial
            grant = await store.acquire(holder="w2", tenant_id=tenant_id, ttl_s=60)
            assert grant is not None and grant.device_id == new.id

    try:
        run(body(), timeout=180)
    finally:
        run(provider.close())
