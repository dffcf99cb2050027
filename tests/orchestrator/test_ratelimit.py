"""The per-tenant submission limit shared through Redis: two limiters (two API processes) on one
real Redis and key prefix share one bucket; Redis down degrades to the per-process limit."""

from __future__ import annotations

import asyncio
import logging
import math
import time
import uuid

import pytest
import redis.asyncio as aioredis

from orchestrator.errors import RateLimited
from orchestrator.services.ratelimit import RedisTokenBuckets, TokenBuckets
from tests.aio import run
from tests.asgi import closed_port
from tests.conftest import REDIS_URL
from tests.orchestrator.conftest import StartApi


async def taken(limiter: RedisTokenBuckets | TokenBuckets, key: uuid.UUID) -> bool:
    try:
        await limiter.take(key)
    except RateLimited:
        return False
    return True


def test_two_limiters_share_one_bucket(redis_prefix: str) -> None:
    async def scenario() -> tuple[list[bool], RateLimited]:
        a = RedisTokenBuckets.from_url(REDIS_URL, 0.5, 3, prefix=redis_prefix)
        b = RedisTokenBuckets.from_url(REDIS_URL, 0.5, 3, prefix=redis_prefix)
        tenant = uuid.uuid4()
        try:
            got = [await taken(a, tenant) for _ in range(3)]
            with pytest.raises(RateLimited) as refused:
                await b.take(tenant)
            assert await taken(b, uuid.uuid4())  # another tenant has a bucket of its own
            return got, refused.value
        finally:
            await a.close()
            await b.close()

    got, refused = run(scenario())
    assert got == [True, True, True]
    assert 0 < refused.retry_after_s <= 2.0  # one token at 0.5/s
    assert "at most 0.5/s (burst 3) per tenant" in refused.message


def test_combined_rate_of_two_limiters_is_bounded(redis_prefix: str, caplog: pytest.LogCaptureFixture) -> None:
    """300 concurrent submissions through two limiters: one bucket's worth, never the fallback's."""
    rate, burst = 20.0, 5

    async def scenario() -> tuple[int, float, int]:
        limiters = [RedisTokenBuckets.from_url(REDIS_URL, rate, burst, prefix=redis_prefix) for _ in range(2)]
        tenant = uuid.uuid4()
        try:
            started = time.monotonic()
            results = await asyncio.gather(*(taken(limiters[i % 2], tenant) for i in range(300)))
            elapsed = time.monotonic() - started
            # In-process buckets, one per process, for contrast: each grants its own burst.
            local = [TokenBuckets(rate, burst) for _ in range(2)]
            local_granted = sum([await taken(local[i % 2], tenant) for i in range(2 * burst)])
            return sum(results), elapsed, local_granted
        finally:
            for limiter in limiters:
                await limiter.close()

    with caplog.at_level(logging.WARNING, logger="orchestrator.services.ratelimit"):
        granted, elapsed, local_granted = run(scenario())
    assert not caplog.records  # a burst queues for a pooled connection; it never looks like Redis down
    assert burst <= granted <= burst + math.ceil(rate * elapsed) + 1, (granted, elapsed)
    assert local_granted == 2 * burst


def test_tokens_refill_and_the_key_expires(redis_prefix: str) -> None:
    async def scenario() -> tuple[int, float]:
        limiter = RedisTokenBuckets.from_url(REDIS_URL, 50.0, 1, prefix=redis_prefix)
        r = aioredis.Redis.from_url(REDIS_URL)
        tenant = uuid.uuid4()
        try:
            await limiter.take(tenant)
            with pytest.raises(RateLimited) as refused:
                await limiter.take(tenant)
            deadline = time.monotonic() + 5
            while not await taken(limiter, tenant):  # refills at 50/s on Redis's clock
                assert time.monotonic() < deadline, "the bucket never refilled"
                await asyncio.sleep(refused.value.retry_after_s)
            return int(await r.pttl(limiter.key_for(tenant))), refused.value.retry_after_s
        finally:
            await limiter.close()
            await r.aclose()

    ttl_ms, wait_s = run(scenario())
    assert 0 < wait_s <= 0.02
    assert 0 < ttl_ms <= 1000 + 20  # a full refill (1 / 50 s) plus a second's margin


def test_redis_down_degrades_to_the_process_limit(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> list[bool]:
        limiter = RedisTokenBuckets.from_url(f"redis://127.0.0.1:{closed_port()}/0", 0.5, 2)
        tenant = uuid.uuid4()
        try:
            return [await taken(limiter, tenant) for _ in range(3)]
        finally:
            await limiter.close()

    with caplog.at_level(logging.WARNING, logger="orchestrator.services.ratelimit"):
        got = run(scenario())
    assert got == [True, True, False]  # never an error; this process's own bucket still limits
    warnings = [r for r in caplog.records if "Redis unavailable" in r.getMessage()]
    assert len(warnings) == 1  # once, not per request


def test_two_api_processes_share_the_limit(start_api: StartApi, migrated_pg_url: str) -> None:
    """Two apps (as `phonefleet api --workers 2` runs them) on one database and Redis."""
    limits = {"rate_limit_per_s": 0.5, "rate_limit_burst": 2}
    one, two = start_api(migrated_pg_url, auth=limits), start_api(migrated_pg_url, auth=limits)
    caller = one.caller()
    other = two.client(caller.key)
    codes = [
        caller.http.post("/api/v1/tasks", json={"instruction": "a"}).status_code,
        other.post("/api/v1/tasks", json={"instruction": "b"}).status_code,
        caller.http.post("/api/v1/tasks", json={"instruction": "c"}).status_code,
    ]
    refused = other.post("/api/v1/tasks", json={"instruction": "d"})
    assert codes == [202, 202, 429]
    assert refused.status_code == 429 and int(refused.headers["Retry-After"]) >= 1


def test_without_redis_each_api_process_limits_alone(start_api: StartApi, migrated_sqlite_url: str) -> None:
    limits = {"rate_limit_per_s": 0.5, "rate_limit_burst": 1}
    one = start_api(migrated_sqlite_url, redis_url=None, auth=limits)
    two = start_api(migrated_sqlite_url, redis_url=None, auth=limits)
    caller = one.caller()
    assert caller.http.post("/api/v1/tasks", json={"instruction": "a"}).status_code == 202
    assert caller.http.post("/api/v1/tasks", json={"instruction": "b"}).status_code == 429
    assert two.client(caller.key).post("/api/v1/tasks", json={"instruction": "c"}).status_code == 202
