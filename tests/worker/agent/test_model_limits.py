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
        # Waiters re-check on their own only after 60 s: within the 30 s deadline only releases wake them.
        limiters = [RedisSlots(c, "http://m/v1|m", 3, prefix=redis_prefix, wake_poll_s=60) for c in conns]
        holding = peak = 0

        async def work(limiter: RedisSlots) -> None:
            nonlocal holding, peak
            async with limiter.slot():
                holding += 1
                peak = max(peak, holding)
                await asyncio.sleep(0.02)  # the request's work (behaviour, not synchronisation)
                holding -= 1

        await asyncio.wait_for(asyncio.gather(*(work(limiters[i % len(limiters)]) for i in range(30))), 30)
        return peak, await limiters[0].holders()

    peak, left = with_redis(3, body)
    assert peak == 3
    assert left == 0


def test_release_wakes_a_waiter_without_polling(redis_prefix: str) -> None:
    async def body(conns: list[aioredis.Redis]) -> bool:
        a, b = (RedisSlots(c, "ep", 1, prefix=redis_prefix, wake_poll_s=60) for c in conns)
        token = await a.acquire()
        waiter = asyncio.create_task(b.acquire())
        await blocked_in_blpop(conns[1])
        assert not waiter.done()
        await a.release(token)
        # it would re-check on its own only after 60 s: acquiring within 30 s means the release woke it
        got = await asyncio.wait_for(waiter, 30)
        await b.release(got)
        return bool(got)

    assert with_redis(2, body)


def test_dead_holder_slot_frees_after_lease(redis_prefix: str) -> None:
    async def body(conns: list[aioredis.Redis]) -> float:
        dead = RedisSlots(conns[0], "ep", 1, prefix=redis_prefix, lease_ttl_s=0.6)
        alive = RedisSlots(conns[1], "ep", 1, prefix=redis_prefix, lease_ttl_s=0.6, wake_poll_s=0.1)
        started = time.monotonic()  # before the lease starts, so the wait below is at least the lease
        await dead.acquire()  # and never release nor refresh: the process "died"
        token = await asyncio.wait_for(alive.acquire(), 30)  # a deadline against a hang only
        waited = time.monotonic() - started
        await alive.release(token)
        return waited

    waited = with_redis(2, body)
    assert waited >= 0.55, waited  # the slot came free when the 0.6 s lease ran out, not before


def test_expired_holders_wake_the_other_waiters(redis_prefix: str) -> None:
    """Slots freed by expiry are announced by the acquirer that found them (no release runs)."""

    async def body(conns: list[aioredis.Redis]) -> list[float]:
        dead = RedisSlots(conns[0], "ep", 2, prefix=redis_prefix, lease_ttl_s=0.5)
        for _ in range(2):
            await dead.acquire()
        # only the first waiter re-checks on its own; the second can only be woken by it
        waiters = [RedisSlots(c, "ep", 2, prefix=redis_prefix, lease_ttl_s=0.5, wake_poll_s=poll)
                   for c, poll in zip(conns[1:], (0.3, 60), strict=True)]  # fmt: skip
        # Within the 30 s deadline the second waiter's own 60 s re-check never comes.
        return await asyncio.wait_for(asyncio.gather(*(w.acquire() for w in waiters)), 30)

    tokens = with_redis(3, body)
    assert len(tokens) == 2 and all(tokens), tokens


def test_lease_is_refreshed_while_the_request_runs(redis_prefix: str) -> None:
    async def body(conns: list[aioredis.Redis]) -> tuple[int, bool]:
        # Leases long enough that a busy machine still refreshes in time (every lease_ttl_s / 3).
        holder = RedisSlots(conns[0], "ep", 1, prefix=redis_prefix, lease_ttl_s=1.5)
        other = RedisSlots(conns[1], "ep", 1, prefix=redis_prefix, lease_ttl_s=1.5, wake_poll_s=0.05)
        async with holder.slot():
            await asyncio.sleep(4.5)  # a request running for three lease lengths
            held = await holder.holders()
            try:
                await asyncio.wait_for(other.acquire(), 1.5)
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
        token = await asyncio.wait_for(b.acquire(), 20)  # free: no 30 s re-check needed
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
