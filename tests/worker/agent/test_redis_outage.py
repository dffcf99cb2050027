"""The model's in-flight cap through a Redis outage, against a Redis of the test's own that it stops.

Chats must go on while Redis is down (a process-local cap stands in, one warning per outage) and
the cap must go back to Redis once it answers again.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from tests.redis_servers import private_redis
from tests.worker.agent.model_servers import ModelServer, serve
from tests.worker.agent.test_model_client import HELLO, config
from worker.agent.model_client import ModelClient
from worker.agent.model_limits import RedisSlots

PREFIX = "pftest:outage:"  # the Redis is the test's own: no other test shares its keys


async def _until(predicate: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Await ``predicate()`` until it is true; the deadline only guards against a hang."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout}s: {what}")
        await asyncio.sleep(0.05)


def test_chats_go_on_while_redis_is_down_and_the_cap_returns_to_redis(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="worker.agent.model_limits")
    with private_redis(tmp_path) as redis_server, serve(ModelServer()) as model:
        cfg = config(model.base_url, max_in_flight=2, redis_key_prefix=PREFIX)

        async def go() -> tuple[str, list[str], bool, int, bool]:
            r = aioredis.Redis.from_url(redis_server.url, socket_connect_timeout=5)
            try:
                async with ModelClient(cfg, redis=r) as client:
                    # retry_s=0: this one tries Redis on every acquire, so the test need not wait for it.
                    slots = RedisSlots(r, cfg.endpoints[0].name, 2, prefix=PREFIX, retry_s=0)
                    before = (await client.chat(HELLO)).content

                    redis_server.stop()
                    during = [(await client.chat(HELLO)).content for _ in range(3)]
                    async with slots.slot():
                        degraded = slots.degraded

                    redis_server.start()  # on the same port, empty
                    async with slots.slot():
                        held = await slots.holders()  # a holder in the restarted Redis
                    await r.delete(slots.wake_key)

                    async def chat_through_redis() -> bool:
                        # A release through Redis leaves the wake-up list behind; a local one does not.
                        await client.chat(HELLO)
                        return bool(await r.exists(slots.wake_key))

                    await _until(chat_through_redis, 10, "a chat's slot taken from Redis again")
                    return before, during, degraded, held, slots.degraded
            finally:
                await r.aclose()

        before, during, degraded, held, degraded_after = asyncio.run(go())
    assert before and during == [before] * 3
    assert degraded and held == 1 and not degraded_after
    warnings = [rec for rec in caplog.records if "Redis unreachable" in rec.getMessage()]
    # One per limiter (the client's and the test's), not one per chat.
    assert len(warnings) == 2, [rec.getMessage() for rec in warnings]
    for rec in warnings:
        assert rec.levelno == logging.WARNING
        assert rec.endpoint == cfg.endpoints[0].name and "Error" in rec.error  # type: ignore[attr-defined]
    assert sum("answers again" in rec.getMessage() for rec in caplog.records) == 2
