"""Wake-up hints through a Redis outage, against a Redis of the test's own that it stops and restarts.

A run notifies both kinds while it works: ``EventSignal`` (events were committed) and the pool's
``RedisSignal`` (a lease ended). Neither may raise while Redis is down, local waiters must still be
woken, and both must reach other processes again once Redis is back (their subscribers resubscribe).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

from device_pool.pool.signals import RELEASED, RedisSignal
from orchestrator.notifier import EventSignal
from tests.redis_servers import private_redis


async def _until(predicate: Callable[[], Awaitable[bool]], timeout: float, what: str) -> None:
    """Await ``predicate()`` until it is true; the deadline only guards against a hang."""
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {timeout}s: {what}")


def test_hints_neither_raise_nor_stall_while_redis_is_down_and_reach_others_after(tmp_path: Path) -> None:
    with private_redis(tmp_path) as redis_server:

        async def go() -> dict[str, object]:
            # writer/reader pairs, as a worker's run and an API process (or the pool manager) would be
            events, events_reader = EventSignal(redis_server.url), EventSignal(redis_server.url)
            pool, pool_reader = RedisSignal(redis_server.url), RedisSignal(redis_server.url)
            seen: dict[str, object] = {}
            try:
                await events_reader.arm()
                await pool_reader.arm(RELEASED)  # both subscribed while Redis is up
                redis_server.stop()

                started = time.monotonic()
                local = await events.arm()
                events.notify()  # fire-and-forget: its publish fails in the background, logged
                pool_local = await pool.arm(RELEASED)
                await pool.notify(RELEASED)  # awaited: a refused PUBLISH is logged, not raised
                seen["stall_s"] = time.monotonic() - started
                seen["local_woken"] = local.is_set() and pool_local.is_set()

                redis_server.start()  # same port, empty: the subscribers must resubscribe

                async def events_reach_the_reader() -> bool:
                    token = await events_reader.arm()
                    events.notify()
                    return await events_reader.wait(token, 0.5)

                async def pool_reaches_the_reader() -> bool:
                    token = await pool_reader.arm(RELEASED)
                    await pool.notify(RELEASED)
                    return await pool_reader.wait(token, 0.5)

                # After a resubscription a reader is woken once anyway; a second notify proves the path.
                for _ in range(2):
                    await _until(events_reach_the_reader, 20, "an events hint across processes again")
                    await _until(pool_reaches_the_reader, 20, "a pool hint across processes again")
                seen["resumed"] = True
            finally:
                for signal in (events, events_reader, pool, pool_reader):
                    await signal.close()
            return seen

        seen = asyncio.run(asyncio.wait_for(go(), 60))
    assert seen["local_woken"] is True
    assert seen["stall_s"] < 5.0  # a refused connection: no waiting out the 5 s publish deadline
    assert seen["resumed"] is True
