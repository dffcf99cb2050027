"""In-flight caps: ``RedisSlots`` against the real Redis (several connections act as several processes)."""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import TypeVar

import pytest
import redis.asyncio as aioredis

from tests.conftest import REDIS_URL
from worker.agent.model_limits import LocalSlots, RedisSlots, slot_keys

T = TypeVar("T")


def with_redis(n: int, body: Callable[[list[aioredis.Redis]], Awaitable[T]]) -> T:
    """Run ``body`` with ``n`` separate Redis clients (one per simulated process), named ``<uuid>-<i>``."""
    run = uuid.uuid4().hex[:12]

    async def go() -> T:
        conns = [aioredis.Redis.from_url(REDIS_URL, client_name=f"{run}-{i}") for i in range(n)]
        try:
            return await body(conns)
        finally:
            for conn in conns:
                await conn.aclose()

    return asyncio.run(go())


async def blocked_in_blpop(conn: aioredis.Redis, timeout: float = 5.0) -> None:
    """Wait until a connection of ``conn`` (by its client name) sits in BLPOP."""
    name = conn.get_connection_kwargs()["client_name"]
    admin = aioredis.Redis.from_url(REDIS_URL)
    deadline = time.monotonic() + timeout
    try:
        while not any(c["name"] == name and c["cmd"] == "blpop" for c in await admin.client_list()):
            if time.monotonic() > deadline:
                raise TimeoutError(f"{name} never blocked in BLPOP")
            await asyncio.sleep(0.01)
    finally:
        await admin.aclose()


def test_cap_holds_across_connections(redis_prefix: str) -> None:
    async def body(conns: list[aioredis.Redis]) -> tuple[int, int]:
        limiters = [RedisSlots(c, "http://m/v1|m", 3, prefix=redis_prefix, wake_poll_s=0.5) for c in conns]
        holding = peak = 0

        async def work(limiter: RedisSlots) -> None:
            nonlocal holding, peak
            async with limiter.slot():
                holding += 1
                peak = max(peak, holding)
                await asyncio.sleep(0.02)  # the request's work (behaviour, not synchronisation)
                holding -= 1

        started = time.monotonic()
        await asyncio.gather(*(work(limiters[i % len(limiters)]) for i in range(30)))
        assert time.monotonic() - started < 3.0  # woken by releases, not by the 0.5 s re-check
        return peak, await limiters[0].holders()

    peak, left = with_redis(3, body)
    assert peak == 3
    assert left == 0


def test_release_wakes_a_waiter_without_polling(redis_prefix: str) -> None:
    async def body(conns: list[aioredis.Redis]) -> float:
        a, b = (RedisSlots(c, "ep", 1, prefix=redis_prefix, wake_poll_s=30) for c in conns)
        token = await a.acquire()
        waiter = asyncio.create_task(b.acquire())
        await blocked_in_blpop(conns[1])
        assert not waiter.done()
        released = time.monotonic()
        await a.release(token)
        got = await asyncio.wait_for(waiter, 5)
        woke = time.monotonic() - released
        await b.release(got)
        return woke

    assert with_redis(2, body) < 0.5


def test_dead_holder_slot_frees_after_lease(redis_prefix: str) -> None:
    async def body(conns: list[aioredis.Redis]) -> float:
        dead = RedisSlots(conns[0], "ep", 1, prefix=redis_prefix, lease_ttl_s=0.6)
        alive = RedisSlots(conns[1], "ep", 1, prefix=redis_prefix, lease_ttl_s=0.6, wake_poll_s=0.1)
        await dead.acquire()  # and never release nor refresh: the process "died"
        started = time.monotonic()
        token = await asyncio.wait_for(alive.acquire(), 5)
        waited = time.monotonic() - started
        await alive.release(token)
        return waited

    waited = with_redis(2, body)
    assert 0.4 <= waited < 1.2, waited


def test_expired_holders_wake_the_other_waiters(redis_prefix: str) -> None:
    """Slots freed by expiry are announced by the acquirer that found them (no release runs)."""

    async def body(conns: list[aioredis.Redis]) -> list[float]:
        dead = RedisSlots(conns[0], "ep", 2, prefix=redis_prefix, lease_ttl_s=0.5)
        for _ in range(2):
            await dead.acquire()
        # only the first waiter re-checks on its own; the second can only be woken by it
        waiters = [RedisSlots(c, "ep", 2, prefix=redis_prefix, lease_ttl_s=0.5, wake_poll_s=poll)
                   for c, poll in zip(conns[1:], (0.3, 30), strict=True)]  # fmt: skip
        started = time.monotonic()

        async def one(limiter: RedisSlots) -> float:
            await limiter.acquire()
            return time.monotonic() - started

        return await asyncio.wait_for(asyncio.gather(*(one(w) for w in waiters)), 5)

    times = with_redis(3, body)
    assert all(t < 1.0 for t in times), times


def test_lease_is_refreshed_while_the_request_runs(redis_prefix: str) -> None:
    async def body(conns: list[aioredis.Redis]) -> tuple[int, bool]:
        holder = RedisSlots(conns[0], "ep", 1, prefix=redis_prefix, lease_ttl_s=0.3)
        other = RedisSlots(conns[1], "ep", 1, prefix=redis_prefix, lease_ttl_s=0.3, wake_poll_s=0.05)
        async with holder.slot():
            await asyncio.sleep(1.0)  # a request running for three lease lengths
            held = await holder.holders()
            try:
                await asyncio.wait_for(other.acquire(), 0.3)
                stolen = True
            except TimeoutError:
                stolen = False
        return held, stolen

    held, stolen = with_redis(2, body)
    assert held == 1 and not stolen


def test_cancelled_waiter_and_cancelled_holder_leak_nothing(redis_prefix: str) -> None:
    async def body(conns: list[aioredis.Redis]) -> tuple[int, int]:
        a, b = (RedisSlots(c, "ep", 1, prefix=redis_prefix, wake_poll_s=30) for c in conns)
        entered = asyncio.Event()

        async def hold() -> None:
            async with a.slot():
                entered.set()
                await asyncio.Event().wait()  # until cancelled

        holder = asyncio.create_task(hold())
        await entered.wait()
        waiter = asyncio.create_task(b.acquire())
        await blocked_in_blpop(conns[1])
        waiter.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await waiter
        during = await a.holders()
        holder.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await holder
        after = await a.holders()
        token = await asyncio.wait_for(b.acquire(), 1)  # free at once
        await b.release(token)
        return during, after

    assert with_redis(2, body) == (1, 0)


def test_wake_list_stays_bounded(redis_prefix: str) -> None:
    async def body(conns: list[aioredis.Redis]) -> int:
        limiter = RedisSlots(conns[0], "ep", 2, prefix=redis_prefix)
        for _ in range(20):
            async with limiter.slot():
                pass
        return await conns[0].llen(slot_keys(redis_prefix, "ep")[1])

    assert with_redis(1, body) <= 2


def test_local_slots_cap_within_the_process() -> None:
    async def go() -> int:
        slots = LocalSlots(2)
        holding = peak = 0

        async def work() -> None:
            nonlocal holding, peak
            async with slots.slot():
                holding += 1
                peak = max(peak, holding)
                await asyncio.sleep(0.01)
                holding -= 1

        await asyncio.gather(*(work() for _ in range(10)))
        return peak

    assert asyncio.run(go()) == 2


def test_limits_are_validated() -> None:
    with pytest.raises(ValueError):
        LocalSlots(0)
    with pytest.raises(ValueError):
        RedisSlots(aioredis.Redis.from_url(REDIS_URL), "ep", 0)
