"""How fast the agent's parts react: the figures the unit tests assert only as behaviour.

The tests show that these things happen (a cancel cuts off a model call, a release wakes a waiter,
a hostile reply is refused…) without bounding how long they take, which a loaded machine would
break. The times are here instead, each over ``--runs`` runs, against real servers: a scripted
model server on 127.0.0.1 (tests/worker/agent/model_servers.py) and Redis on 127.0.0.1:6379.

- parse a hostile reply: 20,000 unclosed ``do(action="`` and ``finish(message='`` each, refused;
- parse an ordinary reply, for contrast;
- cancel a streamed chat: ``task.cancel()`` to the chat task's end, tokens flowing;
- connection refused: ``chat`` on a dead port to ``ModelUnavailable``, one attempt;
- first-token deadline: how long past a 0.4 s ``first_token_timeout_s`` the ``ModelTimeout`` comes;
- release wakes a waiter: ``release`` to the blocked waiter's ``acquire`` returning (another
  connection, as another process; its own re-check only every 30 s);
- lease runs out: how long past a dead holder's 0.6 s lease the waiter gets the slot (re-check 0.1 s).

    .venv/bin/python bench/bench_reactions.py [--runs 20]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import os
import platform
import statistics
import sys
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import redis.asyncio as aioredis  # noqa: E402

from tests.conftest import REDIS_URL  # noqa: E402
from tests.worker.agent.model_servers import Hang, ModelServer, Reply, dead_url, serve  # noqa: E402
from worker.agent.errors import ActionError, ModelTimeout, ModelUnavailable  # noqa: E402
from worker.agent.model_client import ModelClient, ModelClientConfig, ModelEndpoint  # noqa: E402
from worker.agent.model_limits import RedisSlots  # noqa: E402
from worker.agent.parser import parse_reply  # noqa: E402

HELLO = [{"role": "user", "content": "hi"}]
HOSTILE = 'do(action="' * 20000 + "finish(message='" * 20000
ORDINARY = '<think>The Wi-Fi switch is on the right.</think><answer>do(action="Tap", element=[870,312])</answer>'


def config(url: str, **overrides: object) -> ModelClientConfig:
    return ModelClientConfig(endpoints=[ModelEndpoint(url, "bench-model")], **overrides)  # type: ignore[arg-type]


async def parse_hostile() -> float:
    started = time.perf_counter()
    with contextlib.suppress(ActionError):
        parse_reply(HOSTILE)
    return time.perf_counter() - started


async def parse_ordinary() -> float:
    started = time.perf_counter()
    parse_reply(ORDINARY)
    return time.perf_counter() - started


async def cancel_stream(server: ModelServer) -> float:
    server.streaming.clear()
    async with ModelClient(config(server.base_url)) as client:
        task = asyncio.create_task(client.chat(HELLO))
        assert await asyncio.to_thread(server.streaming.wait, 30), "the stream never started"
        started = time.perf_counter()
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        return time.perf_counter() - started


async def refused() -> float:
    url = dead_url()
    async with ModelClient(config(url, max_retries=0)) as client:
        started = time.perf_counter()
        with contextlib.suppress(ModelUnavailable):
            await client.chat(HELLO)
        return time.perf_counter() - started


async def first_token_overshoot(server: ModelServer) -> float:
    async with ModelClient(config(server.base_url, first_token_timeout_s=0.4, max_retries=0)) as client:
        started = time.perf_counter()
        with contextlib.suppress(ModelTimeout):
            await client.chat(HELLO)
        return time.perf_counter() - started - 0.4


async def release_wakes(prefix: str) -> float:
    conns = [aioredis.Redis.from_url(REDIS_URL, client_name=f"bench-{uuid.uuid4().hex[:8]}") for _ in range(2)]
    try:
        a, b = (RedisSlots(c, "ep", 1, prefix=prefix, wake_poll_s=30) for c in conns)
        token = await a.acquire()
        waiter = asyncio.create_task(b.acquire())
        await blocked_in_blpop(conns[1])
        started = time.perf_counter()
        await a.release(token)
        got = await asyncio.wait_for(waiter, 30)
        woke = time.perf_counter() - started
        await b.release(got)
        return woke
    finally:
        for conn in conns:
            await conn.aclose()


async def lease_overshoot(prefix: str) -> float:
    conns = [aioredis.Redis.from_url(REDIS_URL) for _ in range(2)]
    try:
        dead = RedisSlots(conns[0], "ep", 1, prefix=prefix, lease_ttl_s=0.6)
        alive = RedisSlots(conns[1], "ep", 1, prefix=prefix, lease_ttl_s=0.6, wake_poll_s=0.1)
        started = time.perf_counter()
        await dead.acquire()  # never released: only the lease frees it
        token = await asyncio.wait_for(alive.acquire(), 30)
        waited = time.perf_counter() - started - 0.6
        await alive.release(token)
        return waited
    finally:
        for conn in conns:
            await conn.aclose()


async def blocked_in_blpop(conn: aioredis.Redis) -> None:
    """Until a connection of ``conn`` (by its client name) sits in BLPOP."""
    name = conn.get_connection_kwargs()["client_name"]
    admin = aioredis.Redis.from_url(REDIS_URL)
    try:
        async with asyncio.timeout(30):
            while not any(c["name"] == name and c["cmd"] == "blpop" for c in await admin.client_list()):
                await asyncio.sleep(0.005)
    finally:
        await admin.aclose()


async def times(runs: int, once: Callable[[], Awaitable[float]]) -> list[float]:
    return [await once() for _ in range(runs)]


async def measure(runs: int) -> list[tuple[str, list[float]]]:
    prefix = f"bench-reactions-{uuid.uuid4().hex[:8]}:"
    rows = [
        ("parse a hostile reply (refused)", await times(runs, parse_hostile)),
        ("parse an ordinary reply", await times(runs, parse_ordinary)),
    ]
    long_stream = Reply(content="x" * 1200, chunks=1200, chunk_delay_s=0.05)
    with serve(ModelServer(default=long_stream)) as server:
        rows.append(("cancel a streamed chat", await times(runs, lambda: cancel_stream(server))))
    rows.append(("connection refused -> error", await times(runs, refused)))
    with serve(ModelServer(default=Hang())) as server:
        rows.append(("past the 0.4 s first-token deadline", await times(runs, lambda: first_token_overshoot(server))))
    r = aioredis.Redis.from_url(REDIS_URL)
    try:
        rows.append(("release wakes a waiter (Redis)", await times(runs, lambda: release_wakes(prefix))))
        rows.append(("past a dead holder's 0.6 s lease", await times(runs, lambda: lease_overshoot(prefix))))
    finally:
        keys = [key async for key in r.scan_iter(match=f"{prefix}*")]
        if keys:
            await r.delete(*keys)
        await r.aclose()
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=20)
    args = parser.parse_args()
    logging.getLogger("worker").setLevel(logging.ERROR)  # each failed attempt would log a warning
    rows = asyncio.run(measure(args.runs))
    print(f"Reactions, {args.runs} runs each; {os.cpu_count()} CPUs, {platform.machine()}, "
          f"Python {platform.python_version()}")  # fmt: skip
    print(f"{'reaction':<38} {'p50 ms':>8} {'p90 ms':>8} {'max ms':>8}")
    for name, seconds in rows:
        ms = sorted(s * 1000 for s in seconds)
        p90 = ms[int(0.9 * (len(ms) - 1))]
        print(f"{name:<38} {statistics.median(ms):>8.1f} {p90:>8.1f} {ms[-1]:>8.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
