"""Personal phone wake: cold (asleep → a device restarted on its data) vs warm (ready: its device kept).

A pool of one phone on a throwaway SQLite database, a private adb server, the real ``PoolManager``
and ``PersonalPhoneLeases``: each round puts the personal phone to sleep (unused for
``idle_stop_s``), then times a lease of it from request to grant (the manager's pass attaches the
data), releases it, lets the manager keep the device for it, and times a warm lease. Two providers:

- ``sim``: the virtual phone (a process restarted on the phone's data directory);
- ``redroid``: the redroid provider under a real, private Docker engine (tests/dockerd.py: Debian's
  dockerd, needs root) with the stand-in image the tests use — a container recreated on the phone's
  volume. The stand-in's ``/init`` is the virtual phone, not Android: a real redroid boot takes tens
  of seconds more. Skipped, with the reason, where dockerd cannot start.

Run from the repository root:

    .venv/bin/python bench/bench_personal_wake.py [--rounds 10] [--provider sim|redroid|both]

It prints one table (ms).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import platform
import sys
import tempfile
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from sqlalchemy import update  # noqa: E402

from device_pool.pool import LeaseStore, PoolManager  # noqa: E402
from device_pool.pool.personal import PersonalPhoneLeases  # noqa: E402
from device_pool.providers import Provider  # noqa: E402
from device_pool.providers.redroid import RedroidConfig, RedroidProvider  # noqa: E402
from device_pool.providers.sim import SimProvider, SimProviderConfig  # noqa: E402
from orchestrator.db import PersonalPhone, make_engine, make_sessionmaker, utcnow  # noqa: E402
from tests.conditions import reserved_ports  # noqa: E402
from tests.databases import migrate_to_head, sqlite_url  # noqa: E402
from tests.dockerd import (  # noqa: E402
    STANDIN,
    DockerdUnavailable,
    build_standin_image,
    standin_settings,
    start_dockerd,
)
from tests.orchestrator.factories import make_user  # noqa: E402
from tests.processes import adb_binary, start_adb_server  # noqa: E402


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def _lease(leases: PersonalPhoneLeases, manager: PoolManager, phone_id: uuid.UUID, tenant_id: uuid.UUID):
    """Time one lease of the phone; the manager's passes run beside it (as ``phonefleet pool``'s would)."""
    started = time.perf_counter()
    waiting = asyncio.ensure_future(
        leases.wait_acquire(phone_id, holder="bench", tenant_id=tenant_id, ttl_s=60, timeout_s=60,
                            wake_timeout_s=60)
    )  # fmt: skip
    while not waiting.done():
        await manager.reconcile()
        await asyncio.sleep(0.01)
    personal = waiting.result()
    return (time.perf_counter() - started) * 1000, personal


def _sim(root: Path, adb_port: int, base_port: int) -> Provider:
    return SimProvider(SimProviderConfig(
        data_root=root / "phones", personal_root=root / "personal", count=1, max_count=1, base_port=base_port,
        adb_port=adb_port, width=720, height=1600, density=320,
    ))  # fmt: skip


def _redroid(docker_url: str, adb_port: int, base_port: int) -> Provider:
    fields = standin_settings(docker_url, f"bench{uuid.uuid4().hex[:6]}")
    return RedroidProvider(
        RedroidConfig(**fields, min_count=1, max_count=1, base_port=base_port, adb_port=adb_port)
    )


async def _bench(rounds: int, root: Path, provider: Provider) -> tuple[list[float], list[float]]:
    url = sqlite_url(root / "bench.db")
    engine = make_engine(url)
    store = LeaseStore(make_sessionmaker(engine), engine.dialect.name)
    manager = PoolManager(store, provider, min_idle=1, max_devices=1, health_interval_s=600, reap_interval_s=600)
    sessions = make_sessionmaker(engine)
    async with sessions.begin() as s:
        user = await make_user(s)
        phone = PersonalPhone(tenant_id=user.tenant_id, user_id=user.id, name="bench")
        s.add(phone)
        await s.flush()
        phone_id, tenant_id = phone.id, user.tenant_id
    leases = PersonalPhoneLeases(store)
    cold, warm = [], []
    try:
        await provider.start()
        await manager.sync_devices()
        for _ in range(rounds):
            elapsed, personal = await _lease(leases, manager, phone_id, tenant_id)
            cold.append(elapsed)
            assert personal.wake_s is not None, "a sleeping phone woke"
            await store.release(personal.grant.lease_id, "bench")
            await manager.reconcile()  # kept for the phone: ready
            elapsed, personal = await _lease(leases, manager, phone_id, tenant_id)
            warm.append(elapsed)
            assert personal.wake_s is None, "a ready phone needs no wake"
            await store.release(personal.grant.lease_id, "bench")
            await manager.reconcile()
            async with sessions.begin() as s:  # unused for idle_stop_s: the next pass puts it to sleep
                await s.execute(update(PersonalPhone).values(last_used_at=utcnow() - dt.timedelta(hours=1)))
            await manager.reconcile()
            await manager.reconcile()
    finally:
        await provider.close()
        await store.close()
        await engine.dispose()
    return cold, warm


def _run(kind: str, rounds: int, binary: str) -> tuple[list[float], list[float]] | str:
    """(cold, warm) samples in ms, or why ``kind`` could not run here."""
    with tempfile.TemporaryDirectory() as tmp, reserved_ports(1) as base_port:
        root = Path(tmp)
        migrate_to_head(sqlite_url(root / "bench.db"))  # its own loop: before ours
        adb = start_adb_server(root / "adb-home", binary)
        dockerd = None
        try:
            if kind == "sim":
                provider = _sim(root, adb.port, base_port)
            else:
                try:
                    dockerd = start_dockerd()
                except DockerdUnavailable as exc:
                    return str(exc).splitlines()[0]
                build_standin_image(dockerd.url, STANDIN)
                provider = _redroid(dockerd.url, adb.port, base_port)
            return asyncio.run(_bench(rounds, root, provider))
        finally:
            if dockerd is not None:
                dockerd.stop()
            adb.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--provider", choices=("sim", "redroid", "both"), default="both")
    args = parser.parse_args()
    binary = adb_binary()
    if binary is None:
        print("needs Debian's adb (apt-get install adb)", file=sys.stderr)
        return 2
    kinds = ("sim", "redroid") if args.provider == "both" else (args.provider,)
    results = {kind: _run(kind, args.rounds, binary) for kind in kinds}
    print(f"personal phone wake, {args.rounds} rounds ({platform.node()}, {platform.python_version()})\n")
    print("| provider | lease of a personal phone | p50 ms | p90 ms | max ms |")
    print("| --- | --- | --- | --- | --- |")
    names = {"sim": "virtual phone", "redroid": "redroid stand-in (real dockerd)"}
    for kind, result in results.items():
        if isinstance(result, str):
            print(f"| {names[kind]} | skipped: {result} | | | |")
            continue
        cold, warm = result
        for name, samples in (("cold (asleep: wake on a device)", cold), ("warm (ready: its device kept)", warm)):
            print(f"| {names[kind]} | {name} | {_percentile(samples, 0.5):.0f} | {_percentile(samples, 0.9):.0f} "
                  f"| {max(samples):.0f} |")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
