"""LeaseStore on real PostgreSQL and SQLite: atomic grants under contention, heartbeats, the reaper, waiting."""

from __future__ import annotations

import asyncio
import datetime as dt
import time
import uuid
from collections import Counter

import pytest

from device_pool.errors import CapacityError, NoDeviceAvailable, PhoneFleetError
from device_pool.pool import EXPIRED, LeaseStore, LocalSignal, RedisSignal, profile_matches
from device_pool.providers import ProviderCapacity
from orchestrator.db import DeviceState, make_engine, make_sessionmaker, utcnow
from tests.aio import run, until
from tests.conftest import REDIS_URL
from tests.device_pool.pool.rows import (
    assert_no_overlap,
    device_states,
    event_types,
    lease_log,
    open_store,
    seed,
)

ENGINES = 4  # separate engines (connection pools) stand in for separate processes


class ObservedSignal(LocalSignal):
    """LocalSignal that says when a waiter has started waiting, so a test can release only then."""

    def __init__(self) -> None:
        super().__init__()
        self.waiting = asyncio.Event()

    async def wait(self, token: asyncio.Event, timeout: float) -> bool:
        self.waiting.set()
        return await super().wait(token, timeout)


class ObservedRedisSignal(RedisSignal):
    def __init__(self, url: str, *, prefix: str) -> None:
        super().__init__(url, prefix=prefix)
        self.waiting = asyncio.Event()

    async def wait(self, token: asyncio.Event, timeout: float) -> bool:
        self.waiting.set()
        return await super().wait(token, timeout)


def test_error_tree() -> None:
    assert issubclass(NoDeviceAvailable, CapacityError) and issubclass(CapacityError, PhoneFleetError)
    assert NoDeviceAvailable("x").retryable is True
    assert isinstance(ProviderCapacity("full", provider="sim"), CapacityError)


def test_profile_matches_like_jsonb_containment() -> None:
    have = {"android": "13", "width": 1080, "apps": ["a", "b"], "gpu": True}
    assert profile_matches(have, {})
    assert profile_matches(have, {"android": "13", "apps": ["b"]})
    assert not profile_matches(have, {"apps": ["c"]})
    assert not profile_matches(have, {"android": 13})  # a number is not the string "13"
    assert not profile_matches(have, {"gpu": 1})  # nor is 1 true
    assert not profile_matches(have, {"missing": None})


def test_100_concurrent_acquirers_over_20_devices(pool_db_url: str) -> None:
    async def body() -> None:
        engines = [make_engine(pool_db_url) for _ in range(ENGINES)]
        stores = [LeaseStore.for_engine(engine) for engine in engines]
        sessions = make_sessionmaker(engines[0])
        try:
            tenant_id, device_ids = await seed(sessions, 20)

            async def round_of_100() -> list:
                grants = await asyncio.gather(
                    *(
                        stores[i % ENGINES].acquire(holder=f"worker-{i}", tenant_id=tenant_id, ttl_s=60)
                        for i in range(100)
                    )
                )
                return [g for g in grants if g is not None]

            first = await round_of_100()
            assert len(first) == 20
            assert sorted(g.device_id for g in first) == sorted(device_ids)  # each device exactly once
            assert set((await device_states(sessions)).values()) == {DeviceState.LEASED}
            log = await lease_log(sessions)
            assert len(log) == 20 and all(lease.released_at is None for lease in log)
            assert_no_overlap(log)

            released = await asyncio.gather(
                *(stores[i % ENGINES].release(g.lease_id, g.holder, "done") for i, g in enumerate(first))
            )
            assert all(released)
            assert set((await device_states(sessions)).values()) == {DeviceState.RESETTING}
            assert await round_of_100() == []  # resetting devices are never handed out

            # As the manager does after a reset; then the whole contention again over the same devices.
            assert all(await asyncio.gather(*(stores[0].mark_idle(d) for d in device_ids)))
            second = await round_of_100()
            assert len({g.device_id for g in second}) == len(second) == 20
            log = await lease_log(sessions)
            assert len(log) == 40
            assert_no_overlap(log)
            types = Counter(kind for kind, _ in await event_types(sessions))
            assert types == {"device.leased": 40, "device.released": 20}
        finally:
            for store in stores:
                await store.close()
            for engine in engines:
                await engine.dispose()

    run(body(), timeout=120)


def test_heartbeat_extends_and_the_reaper_reclaims(pool_db_url: str) -> None:
    async def body() -> None:
        async with open_store(pool_db_url) as (store, sessions):
            tenant_id, [device_id] = await seed(sessions, 1)
            grant = await store.acquire(holder="w1", tenant_id=tenant_id, ttl_s=30)
            assert grant is not None and grant.device_id == device_id

            assert await store.heartbeat(grant.lease_id, "w1", ttl_s=600)
            device = await store.device(device_id)
            assert device.lease_expires_at > grant.expires_at + dt.timedelta(seconds=500)
            lease = await store.lease(grant.lease_id)
            assert lease.expires_at == device.lease_expires_at and lease.heartbeat_at is not None
            assert not await store.heartbeat(grant.lease_id, "someone-else", ttl_s=600)

            assert await store.reap_expired(utcnow()) == []  # not expired yet
            later = device.lease_expires_at + dt.timedelta(seconds=1)
            [ended] = await store.reap_expired(later)
            assert (ended.lease_id, ended.device_id, ended.reason) == (grant.lease_id, device_id, EXPIRED)
            assert (await store.device(device_id)).state == DeviceState.RESETTING
            lease = await store.lease(grant.lease_id)
            assert (lease.released_at, lease.release_reason) == (later, "expired")

            # The holder learns it lost the device; its late release changes nothing.
            assert not await store.heartbeat(grant.lease_id, "w1", ttl_s=600)
            assert not await store.release(grant.lease_id, "w1")
            assert await store.reap_expired(later) == []
            assert [kind for kind, _ in await event_types(sessions)] == ["device.leased", "device.released"]
            assert (await event_types(sessions))[1][1]["reason"] == "expired"

    run(body())


def test_a_lease_past_expiry_cannot_be_heartbeaten_back(pool_db_url: str) -> None:
    async def body() -> None:
        async with open_store(pool_db_url) as (store, sessions):
            tenant_id, _ = await seed(sessions, 1)
            grant = await store.acquire(holder="w1", tenant_id=tenant_id, ttl_s=0.05)
            assert grant is not None
            await until(lambda: utcnow() > grant.expires_at, timeout=5, what="the lease's expiry")
            # Not reaped yet, but already lost: the reaper may take it any moment.
            assert not await store.heartbeat(grant.lease_id, "w1", ttl_s=60)
            assert [e.lease_id for e in await store.reap_expired()] == [grant.lease_id]

    run(body())


def test_release_resets_before_idle_and_events_name_the_tenant(pool_db_url: str) -> None:
    async def body() -> None:
        async with open_store(pool_db_url) as (store, sessions):
            tenant_id, [device_id] = await seed(sessions, 1)
            grant = await store.acquire(holder="w1", tenant_id=tenant_id, ttl_s=60)
            assert not await store.mark_idle(device_id)  # leased: never straight back to idle
            assert not await store.mark_unhealthy(device_id, "probe failed")  # the holder has it
            assert await store.acquire(holder="w2", tenant_id=tenant_id, ttl_s=60) is None
            assert not await store.release(grant.lease_id, "w2")  # not the holder
            assert await store.release(grant.lease_id, "w1", "task finished")
            assert not await store.release(grant.lease_id, "w1")  # once only
            assert (await store.device(device_id)).state == DeviceState.RESETTING
            assert await store.acquire(holder="w2", tenant_id=tenant_id, ttl_s=60) is None
            assert await store.mark_idle(device_id)
            again = await store.acquire(holder="w2", tenant_id=None, ttl_s=60)  # an operator's lease
            assert again is not None and again.device_id == device_id
            assert await store.release(again.lease_id, "w2")
            events = await event_types(sessions)
            # The tenant-less lease wrote no events (events.tenant_id is NOT NULL).
            assert [kind for kind, _ in events] == ["device.leased", "device.released"]
            assert events[1][1] == {
                "device_id": str(device_id), "lease_id": str(grant.lease_id), "holder": "w1",
                "reason": "task finished",
            }  # fmt: skip

    run(body())


def test_acquire_matches_the_profile(pool_db_url: str) -> None:
    async def body() -> None:
        async with open_store(pool_db_url) as (store, sessions):
            base = {"width": 1080, "height": 2400, "density": 420}
            tenant_id, [bank] = await seed(
                sessions, 1, profile={**base, "android": "13", "apps": ["bank", "x"]}
            )
            _, [plain] = await seed(sessions, 1, profile={**base, "android": "14", "apps": []})

            async def lease(profile: dict) -> uuid.UUID | None:
                grant = await store.acquire(holder="w", tenant_id=tenant_id, profile=profile, ttl_s=60)
                return None if grant is None else grant.device_id

            assert await lease({"apps": ["nope"]}) is None
            assert await lease({"android": 13}) is None  # JSON number vs string, as JSONB @> decides
            assert await lease({"android": "14"}) == plain
            assert await lease({"apps": ["x"], "width": 1080}) == bank
            assert await lease({}) is None  # both taken

    run(body())


def test_acquire_avoids_the_devices_it_is_told_to(pool_db_url: str) -> None:
    """A task retried because its phone failed avoids that phone; whether another phone in service
    matches at all (``serves_besides``) says when it may not be avoided."""

    async def body() -> None:
        async with open_store(pool_db_url, poll_s=0.1) as (store, sessions):
            tenant_id, [failed, other] = await seed(sessions, 2, profile={"android": "13"})
            _, [elsewhere] = await seed(sessions, 1, profile={"android": "14"})
            want = {"android": "13"}
            lease = {"holder": "w", "tenant_id": tenant_id, "profile": want, "ttl_s": 60, "avoid": [failed]}

            assert await store.serves_besides(want, [failed])
            grant = await store.acquire(**lease)
            assert grant is not None and grant.device_id == other
            # The other one is busy: the failed one, idle, is still not leased, and a wait times out.
            assert await store.acquire(**lease) is None
            with pytest.raises(NoDeviceAvailable):
                await store.wait_acquire(**lease, timeout_s=0.3)
            # Leased or resetting is still in service; unhealthy is not: then only the failed phone matches.
            assert await store.serves_besides(want, [failed])
            assert await store.release(grant.lease_id, "w")
            assert await store.serves_besides(want, [failed])
            assert await store.mark_unhealthy(other, "adb: device offline")
            assert not await store.serves_besides(want, [failed])
            assert await store.serves_besides({"android": "14"}, [failed]) and elsewhere
            again = await store.acquire(**(lease | {"avoid": []}))
            assert again is not None and again.device_id == failed

    run(body())


def test_wait_acquire_raises_at_its_deadline(pool_db_url: str) -> None:
    async def body() -> None:
        async with open_store(pool_db_url, poll_s=0.1) as (store, sessions):
            tenant_id, _ = await seed(sessions, 1, state=DeviceState.RESETTING)
            started = time.monotonic()
            with pytest.raises(NoDeviceAvailable, match=r"within 0.4 s") as caught:
                await store.wait_acquire(holder="w", tenant_id=tenant_id, ttl_s=60, timeout_s=0.4)
            assert 0.4 <= time.monotonic() - started < 3
            assert caught.value.context["timeout_s"] == 0.4

    run(body())


def test_wait_acquire_wakes_in_process_without_redis(pool_db_url: str) -> None:
    """One store, its LocalSignal: the release + reset wake the waiter long before its 30 s poll."""

    async def body() -> None:
        signal = ObservedSignal()
        async with open_store(pool_db_url, signal=signal, poll_s=30) as (store, sessions):
            tenant_id, [device_id] = await seed(sessions, 1)
            held = await store.acquire(holder="first", tenant_id=tenant_id, ttl_s=60)
            waiter = asyncio.create_task(
                store.wait_acquire(holder="second", tenant_id=tenant_id, ttl_s=60, timeout_s=60)
            )
            await asyncio.wait_for(signal.waiting.wait(), 10)
            started = time.monotonic()
            await store.release(held.lease_id, "first")
            await store.mark_idle(device_id)  # what the manager does once the reset passed
            grant = await asyncio.wait_for(waiter, 10)
            assert grant.device_id == device_id and grant.holder == "second"
            assert time.monotonic() - started < 2

    run(body())


def test_wait_acquire_wakes_across_processes_with_redis(pool_db_url: str, redis_prefix: str) -> None:
    """Two stores on separate engines (two processes) meet only through Redis pub/sub."""

    async def body() -> None:
        engines = [make_engine(pool_db_url) for _ in range(2)]
        signal = ObservedRedisSignal(REDIS_URL, prefix=redis_prefix)
        waiting_side = LeaseStore.for_engine(engines[0], signal=signal, poll_s=30)
        other_side = LeaseStore.for_engine(engines[1], signal=RedisSignal(REDIS_URL, prefix=redis_prefix))
        try:
            tenant_id, [device_id] = await seed(make_sessionmaker(engines[0]), 1)
            held = await other_side.acquire(holder="first", tenant_id=tenant_id, ttl_s=60)
            waiter = asyncio.create_task(
                waiting_side.wait_acquire(holder="second", tenant_id=tenant_id, ttl_s=60, timeout_s=60)
            )
            await asyncio.wait_for(signal.waiting.wait(), 10)
            started = time.monotonic()
            await other_side.release(held.lease_id, "first")
            await other_side.mark_idle(device_id)
            grant = await asyncio.wait_for(waiter, 10)
            assert grant.device_id == device_id
            assert time.monotonic() - started < 2
        finally:
            for store in (waiting_side, other_side):
                await store.close()
            for engine in engines:
                await engine.dispose()

    run(body())
