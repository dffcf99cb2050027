"""The adb server is part of the pool: killed or wedged, it is noticed and replaced within 10 s (the
issue's bound) and every phone is back (`device` in the new server's list, idle, leasable).

Each test runs its own adb server (never the session's shared one) and stops every process it or the
supervisor started by pid; the supervisor's own server is stopped by ``close()``.
"""

from __future__ import annotations

import asyncio
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from device_pool.driver import AdbServerClient
from device_pool.pool import AdbRestart, AdbServerSupervisor, LeaseStore, PoolManager
from device_pool.pool.adb_supervisor import DEAD, WEDGED, adb_listeners
from device_pool.providers import SimProvider, SimProviderConfig
from orchestrator.db import DeviceState, make_engine
from tests.aio import eventually, run
from tests.conditions import port_open
from tests.conftest import ReservePorts
from tests.databases import migrate_to_head, sqlite_url
from tests.device_pool.pool.test_manager import new_tenant, pid_alive
from tests.processes import adb_binary, start_adb_server

BOUND_S = 10.0  # the bound on noticing and replacing a dead or wedged adb server


@pytest.fixture
def adb() -> str:
    binary = adb_binary()
    if binary is None:
        pytest.skip("Debian's adb client is not installed (`apt-get install adb`)")
    return binary


@pytest.fixture
def db_url(tmp_path: Path) -> Iterator[str]:
    """SQLite: the adb server, not the database, is under test."""
    url = sqlite_url(tmp_path / "pool.db")
    migrate_to_head(url)
    yield url


def _provider(tmp_path: Path, base_port: int, adb_port: int, count: int) -> SimProvider:
    return SimProvider(
        SimProviderConfig(
            data_root=tmp_path / "phones", base_port=base_port, count=count, max_count=count,
            adb_port=adb_port, width=720, height=1600, density=320,
        )
    )  # fmt: skip


async def _back(client: AdbServerClient, store: LeaseStore, serials: list[str]) -> bool:
    """Every phone `device` in the server's list and idle in the pool."""
    try:
        listed = await client.devices(timeout=1.0)
    except Exception:  # the server may be down or starting; the condition is simply not met yet
        return False
    rows = await store.devices()
    return all(listed.get(s) == "device" for s in serials) and all(r.state == DeviceState.IDLE for r in rows)


async def _restarted(supervisor: AdbServerSupervisor, count: int) -> AdbRestart | None:
    """The ``count``-th restart, once its phones were reconnected."""
    if len(supervisor.restarts) >= count and supervisor.restarts[count - 1].reconnected_at is not None:
        return supervisor.restarts[count - 1]
    return None


def test_a_killed_then_a_wedged_adb_server_is_replaced_and_every_phone_comes_back(
    tmp_path: Path, adb: str, db_url: str, reserve_ports: ReservePorts
) -> None:
    """The supervisor starts the server itself (no server on the port): its own, to kill when wedged."""
    port = reserve_ports(1)
    home = tmp_path / "adbhome"
    home.mkdir()
    client = AdbServerClient(port=port, adb_path=adb)
    provider = _provider(tmp_path, reserve_ports(2), port, count=2)
    supervisor = AdbServerSupervisor(
        client, providers=[provider], env={**os.environ, "HOME": str(home)}, log_path=tmp_path / "adb.log"
    )
    measured: dict[str, float] = {}
    pids: list[int] = []

    async def body() -> None:
        engine = make_engine(db_url)
        store = LeaseStore.for_engine(engine)
        # Health checks every second: they run into the outages and must not hold them against the phones.
        manager = PoolManager(
            store, provider, min_idle=0, max_devices=2, health_interval_s=1, adb_server=supervisor
        )
        tasks: list[asyncio.Task[None]] = []
        try:
            await supervisor.start()
            assert supervisor.pid is not None
            pids.append(supervisor.pid)
            serials = [spec.serial for spec in await provider.start()]
            await manager.sync_devices()
            phone_pids = {s: provider.pid(s) for s in serials}
            tasks = [asyncio.create_task(supervisor.run()), asyncio.create_task(manager.run())]

            for n, (name, sig) in enumerate((("kill", signal.SIGKILL), ("wedge", signal.SIGSTOP)), start=1):
                old = supervisor.pid
                assert old is not None
                # Struck while the supervisor is between probes, as an outage usually finds it.
                answered = supervisor.answered
                await eventually(lambda a=answered: asyncio.sleep(0, supervisor.answered > a + 1), timeout=30)
                started = time.monotonic()
                os.kill(old, sig)  # the adb server the supervisor started
                restart = await eventually(
                    lambda n=n: _restarted(supervisor, n), timeout=60, what=f"restart {n}"
                )
                await eventually(lambda: _back(client, store, serials), timeout=60, what="phones back")
                back = time.monotonic()
                assert restart.reason == (DEAD if sig == signal.SIGKILL else WEDGED)
                assert supervisor.pid is not None and supervisor.pid != old and not pid_alive(old)
                pids.append(supervisor.pid)
                assert restart.phones == 2 and restart.online == 2
                measured[f"{name}: noticed"] = restart.noticed_at - started
                measured[f"{name}: new server answering"] = (restart.answering_at or 0) - started
                measured[f"{name}: phones device and idle"] = back - started
                assert restart.noticed_at - started < BOUND_S, measured
                assert back - started < BOUND_S, measured

            # The phones themselves were never touched, nor held to blame, and they can be leased.
            assert {s: provider.pid(s) for s in serials} == phone_pids
            rows = await store.devices()
            assert all(not r.quarantined and r.last_error is None for r in rows), rows
            tenant = await new_tenant(engine)
            grants = [await store.acquire(holder=f"w{i}", tenant_id=tenant, ttl_s=60) for i in range(2)]
            assert {g.serial for g in grants if g is not None} == set(serials)
        finally:
            manager.stop()
            supervisor.stop()
            await asyncio.gather(*tasks)
            await provider.close()
            await supervisor.close()
            await store.close()
            await engine.dispose()

    try:
        run(body(), timeout=240)
    finally:
        # A server the supervisor left behind (none should be): still on the port, and one of its pids.
        for pid in set(adb_listeners(port)) & set(pids):
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGKILL)
    for what, seconds in measured.items():
        print(f"adb server {what} after {seconds:.2f} s")
    assert not port_open("127.0.0.1", port), "the supervisor's adb server outlived close()"
    assert len(supervisor.restarts) == 2


@pytest.mark.parametrize("owned", [False, True], ids=["not-owned", "owned"])
def test_a_wedged_server_the_pool_did_not_start_is_killed_only_when_owned(
    tmp_path: Path, adb: str, db_url: str, reserve_ports: ReservePorts, owned: bool
) -> None:
    """Adopted at start (a test's, a developer's): wedged, it is left alone and reported, its phones
    untouched; with ``owned`` the adb process on the port is found and killed, and a new one started."""
    server = start_adb_server(tmp_path / "adbhome", adb)  # this test's own
    client = AdbServerClient(port=server.port, adb_path=adb)
    provider = _provider(tmp_path, reserve_ports(1), server.port, count=1)
    supervisor = AdbServerSupervisor(client, providers=[provider], owned=owned, env=server.env())

    async def body() -> None:
        engine = make_engine(db_url)
        store = LeaseStore.for_engine(engine)
        manager = PoolManager(
            store, provider, min_idle=0, max_devices=1, health_interval_s=1, adb_server=supervisor
        )
        tasks: list[asyncio.Task[None]] = []
        try:
            await supervisor.start()
            assert supervisor.pid is None  # adopted, not started
            assert adb_listeners(server.port) == [server.proc.pid]
            serials = [spec.serial for spec in await provider.start()]
            await manager.sync_devices()
            tasks = [asyncio.create_task(supervisor.run()), asyncio.create_task(manager.run())]
            wedged = time.monotonic()
            os.kill(server.proc.pid, signal.SIGSTOP)
            if owned:
                restart = await eventually(lambda: _restarted(supervisor, 1), timeout=60, what="restart")
                assert restart.reason == WEDGED and restart.killed_pid == server.proc.pid
                assert restart.noticed_at - wedged < BOUND_S
                await eventually(lambda: _back(client, store, serials), timeout=60, what="phone back")
                assert time.monotonic() - wedged < BOUND_S
                assert server.proc.wait(timeout=10) == -signal.SIGKILL
            else:
                await eventually(
                    lambda: asyncio.sleep(0, supervisor.refusals >= 2), timeout=60, what="refused"
                )
                assert not supervisor.answering and supervisor.restarts == []
                assert pid_alive(server.proc.pid) and server.proc.poll() is None
                # The manager waits: the phone is neither failed nor quarantined for the server's outage.
                assert [r.state for r in await store.devices()] == [DeviceState.IDLE]
                os.kill(server.proc.pid, signal.SIGCONT)
                await eventually(lambda: asyncio.sleep(0, supervisor.answering), timeout=30, what="answering")
                await eventually(lambda: _back(client, store, serials), timeout=30, what="phone back")
        finally:
            manager.stop()
            supervisor.stop()
            await asyncio.gather(*tasks)
            await provider.close()
            await supervisor.close()
            await store.close()
            await engine.dispose()

    try:
        run(body(), timeout=180)
    finally:
        if server.proc.poll() is None:
            os.kill(server.proc.pid, signal.SIGCONT)
        server.stop()
    assert not port_open("127.0.0.1", server.port)
