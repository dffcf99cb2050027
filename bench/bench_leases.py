"""Lease acquisition under contention: 100 concurrent requesters, 20 devices, PostgreSQL and SQLite.

Two scenarios per database, each over ``--engines`` separate engines (connection pools standing in
for worker processes), on a throwaway migrated database:

- burst: 100 ``acquire`` calls at once over 20 idle devices (repeated ``--rounds`` times, the
  devices made idle again between rounds): latency of every call and of the granted ones;
- one at a time: 60 uncontended ``acquire`` calls, the statement's own cost for comparison;
- churn: 100 requesters each ``wait_acquire`` a device, hold it ``--hold-ms``, release it, and the
  device is marked idle at once (a reset of zero cost): time from request to grant, with 5x
  oversubscription, so it includes queueing for a free device.

Every run checks the lease log: no device leased twice at once. Run from the repository root
(PostgreSQL on 127.0.0.1:5432):

    .venv/bin/python bench/bench_leases.py [--rounds 5] [--engines 4] [--hold-ms 10]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from device_pool.pool import LeaseStore  # noqa: E402
from orchestrator.db import make_engine, make_sessionmaker  # noqa: E402
from tests.databases import migrate_to_head, sqlite_url, throwaway_postgres  # noqa: E402
from tests.device_pool.pool.rows import assert_no_overlap, lease_log, seed  # noqa: E402

REQUESTERS = 100
DEVICES = 20


def _percentile(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))] if ordered else float("nan")


async def _burst(stores: list[LeaseStore], tenant_id, device_ids, rounds: int) -> tuple[list, list, int]:
    every, granted, grants = [], [], 0

    async def one(i: int, measured: bool):
        started = time.perf_counter()
        grant = await stores[i % len(stores)].acquire(holder=f"r{i}", tenant_id=tenant_id, ttl_s=60)
        elapsed = (time.perf_counter() - started) * 1000
        if measured:
            every.append(elapsed)
            if grant is not None:
                granted.append(elapsed)
        return grant

    # Round 0 is a warm-up: it opens the engines' connections, which is not lease latency.
    for round_ in range(rounds + 1):
        calls = (one(i, round_ > 0) for i in range(REQUESTERS))
        got = [g for g in await asyncio.gather(*calls) if g is not None]
        grants += len(got) if round_ > 0 else 0
        assert len({g.device_id for g in got}) == len(got) == DEVICES, "double lease or missed device"
        for g in got:
            await stores[0].release(g.lease_id, g.holder, "bench")
        for device_id in device_ids:
            await stores[0].mark_idle(device_id)
    return every, granted, grants


async def _sequential(store: LeaseStore, tenant_id, device_ids) -> list[float]:
    """One requester at a time: the cost of the statement itself, for comparison."""
    samples = []
    for _ in range(3):
        grants = []
        for _ in device_ids:
            started = time.perf_counter()
            grants.append(await store.acquire(holder="seq", tenant_id=tenant_id, ttl_s=60))
            samples.append((time.perf_counter() - started) * 1000)
        for grant in grants:
            await store.release(grant.lease_id, grant.holder, "bench")
        for device_id in device_ids:
            await store.mark_idle(device_id)
    return samples


async def _churn(stores: list[LeaseStore], tenant_id, hold_s: float) -> tuple[list, int]:
    waits: list[float] = []

    async def requester(i: int) -> None:
        store = stores[i % len(stores)]
        started = time.perf_counter()
        grant = await store.wait_acquire(holder=f"c{i}", tenant_id=tenant_id, ttl_s=60, timeout_s=120)
        waits.append((time.perf_counter() - started) * 1000)
        await asyncio.sleep(hold_s)  # the work done on the phone
        await store.release(grant.lease_id, grant.holder, "bench")
        await store.mark_idle(grant.device_id)  # an instant reset

    await asyncio.gather(*(requester(i) for i in range(REQUESTERS)))
    return waits, len(waits)


async def _bench(url: str, engines_n: int, rounds: int, hold_s: float) -> list[tuple]:
    engines = [make_engine(url) for _ in range(engines_n)]
    # Short poll: within one process the in-process signal wakes waiters; other engines are "other
    # processes" without Redis here, so they rely on the poll.
    stores = [LeaseStore.for_engine(e, poll_s=0.05) for e in engines]
    sessions = make_sessionmaker(engines[0])
    try:
        tenant_id, device_ids = await seed(sessions, DEVICES)
        every, granted, grants = await _burst(stores, tenant_id, device_ids, rounds)
        sequential = await _sequential(stores[0], tenant_id, device_ids)
        waits, served = await _churn(stores, tenant_id, hold_s)
        assert_no_overlap(await lease_log(sessions))
    finally:
        for store in stores:
            await store.close()
        for engine in engines:
            await engine.dispose()
    return [
        ("one at a time: acquire", len(sequential), len(sequential), sequential),
        ("burst: every acquire", len(every), grants, every),
        ("burst: granted acquire", len(granted), grants, granted),
        ("churn: wait_acquire → grant", served, served, waits),
    ]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--engines", type=int, default=4)
    parser.add_argument("--hold-ms", type=float, default=10.0)
    args = parser.parse_args()
    results: list[tuple[str, tuple]] = []
    with throwaway_postgres("pfbench") as db:
        migrate_to_head(db.url)
        for row in asyncio.run(_bench(db.url, args.engines, args.rounds, args.hold_ms / 1000)):
            results.append(("postgresql", row))
    with tempfile.TemporaryDirectory(prefix="bench-leases-") as tmp:
        url = sqlite_url(Path(tmp) / "pool.db")
        migrate_to_head(url)
        for row in asyncio.run(_bench(url, args.engines, args.rounds, args.hold_ms / 1000)):
            results.append(("sqlite", row))
    print(
        f"{REQUESTERS} concurrent requesters, {DEVICES} devices, {args.engines} engines, "
        f"{args.rounds} burst rounds, hold {args.hold_ms:g} ms; "
        f"{os.cpu_count()} CPUs, {platform.machine()}, Python {platform.python_version()}"
    )
    print(
        f"{'database':<11} {'measure':<28} {'calls':>6} {'grants':>7} {'p50 ms':>8} {'p99 ms':>8} {'double':>7}"
    )
    for database, (name, calls, grants, samples) in results:
        p50, p99 = _percentile(samples, 0.5), _percentile(samples, 0.99)
        # assert_no_overlap above raised if any device was leased twice at once.
        print(f"{database:<11} {name:<28} {calls:>6} {grants:>7} {p50:>8.1f} {p99:>8.1f} {0:>7}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
