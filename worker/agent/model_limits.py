"""Caps on in-flight requests per model endpoint, so a shared model server is batched, not flooded.

Two implementations of one contract, ``SlotLimiter.slot()`` (an async context manager that holds
one slot for the duration of a request):

- ``RedisSlots``: the cap holds across every process that shares the Redis. Holders live in a
  ZSET (member = holder token, score = lease expiry in Redis server milliseconds), so a process
  that dies without releasing frees its slot when the lease runs out. Acquire is one Lua script
  (drop expired holders, count, add), so two processes never both take the last slot. Waiters
  block on a per-endpoint wake-up list (BLPOP) that every release LPUSHes a token to (trimmed to
  the cap), with a short BLPOP timeout as the fallback re-check for slots freed by expiry. A
  holder refreshes its lease while its request runs, and releases in ``finally`` (also when
  cancelled).

  A Redis outage never ends a request: an acquire that meets a Redis error takes a slot of a
  process-local ``LocalSlots`` instead (released locally), and the next acquires try Redis again
  at most every ``retry_s`` until it answers. One warning per outage names the endpoint and the
  error, one info line says Redis is back. A slot held on Redis when it went away keeps its
  request going: its lease refresh re-registers it once Redis answers (a restarted Redis without
  persistence has forgotten it), and a release that fails leaves it to expire. While degraded
  the cap holds per ``LocalSlots`` (per ``ModelClient``), not fleet-wide.
- ``LocalSlots``: an ``asyncio.Semaphore``; the cap then holds only within one event loop (one
  ``ModelClient``), not across processes or threads. Use Redis for a fleet-wide cap.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
import socket
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Coroutine
from typing import Any, Protocol, TypeVar

import redis.asyncio as aioredis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)
T = TypeVar("T")

# What a Redis outage raises: refused or lost connections, timeouts (redis-py's and ours).
_REDIS_DOWN: tuple[type[BaseException], ...] = (RedisError, OSError, TimeoutError)

# KEYS: holders zset, wake list. ARGV: limit, lease ms, token.
# TIME is Redis's clock, so processes on hosts with skewed clocks agree on expiry.
_ACQUIRE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local limit = tonumber(ARGV[1])
local lease = tonumber(ARGV[2])
local expired = redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZCARD', KEYS[1])
if held >= limit then
  return 0
end
redis.call('ZADD', KEYS[1], now + lease, ARGV[3])
redis.call('PEXPIRE', KEYS[1], lease * 2)
-- slots freed by expiry have no release to announce them: wake the other waiters here
local spare = math.min(expired, limit - held - 1)
if spare > 0 then
  for i = 1, spare do redis.call('LPUSH', KEYS[2], '1') end
  redis.call('LTRIM', KEYS[2], 0, limit - 1)
  redis.call('PEXPIRE', KEYS[2], lease * 2)
end
return 1
"""

# KEYS: holders zset, wake list. ARGV: limit, lease ms, token.
_RELEASE = """
local removed = redis.call('ZREM', KEYS[1], ARGV[3])
redis.call('LPUSH', KEYS[2], '1')
redis.call('LTRIM', KEYS[2], 0, tonumber(ARGV[1]) - 1)
redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[2]) * 2)
return removed
"""

# KEYS: holders zset. ARGV: lease ms, token. Returns 1 if the lease was still held.
# A lease that already lapsed (a stalled loop) is put back: the request it counts is still running.
_REFRESH = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local lease = tonumber(ARGV[1])
local had = redis.call('ZSCORE', KEYS[1], ARGV[2])
redis.call('ZADD', KEYS[1], now + lease, ARGV[2])
redis.call('PEXPIRE', KEYS[1], lease * 2)
if had then return 1 end
return 0
"""


class SlotLimiter(Protocol):
    """Holds one of a fixed number of slots while a request runs."""

    limit: int

    def slot(self) -> contextlib.AbstractAsyncContextManager[None]:
        """Wait for a free slot, hold it inside the block, release it on exit or cancellation."""
        ...


class LocalSlots:
    """In-process cap: one ``asyncio.Semaphore`` (per event loop; not shared between processes)."""

    def __init__(self, limit: int) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        self.limit = limit
        self._sem = asyncio.Semaphore(limit)

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        async with self._sem:
            yield


def slot_keys(prefix: str, name: str) -> tuple[str, str]:
    """The holders ZSET and wake-up list keys for the endpoint called ``name``.

    The hash tag keeps both keys in one Redis Cluster slot (Lua scripts need that); the digest
    keeps odd characters of a URL out of the tag.
    """
    tag = hashlib.sha1(name.encode()).hexdigest()[:16]
    return f"{prefix}model-slots:{{{tag}}}:holders", f"{prefix}model-slots:{{{tag}}}:wake"


class RedisSlots:
    """A cap shared by every process using the same Redis and key prefix (see the module docstring).

    ``lease_ttl_s`` bounds how long a dead holder keeps its slot; live holders refresh every
    ``lease_ttl_s / 3``. ``wake_poll_s`` is the longest a waiter sleeps before re-checking on its
    own (for slots freed by expiry); it must stay below the Redis client's socket timeout.
    ``retry_s``: while Redis is unreachable, how often an acquire tries it again (the others take
    a local slot at once).
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        name: str,
        limit: int,
        *,
        prefix: str = "phonefleet:",
        lease_ttl_s: float = 30.0,
        wake_poll_s: float = 1.0,
        retry_s: float = 1.0,
    ) -> None:
        if limit < 1:
            raise ValueError("limit must be >= 1")
        if lease_ttl_s <= 0 or wake_poll_s <= 0 or retry_s < 0:
            raise ValueError("lease_ttl_s and wake_poll_s must be > 0, retry_s >= 0")
        self.limit = limit
        self.name = name
        self._redis = redis
        self.holders_key, self.wake_key = slot_keys(prefix, name)
        self._lease_ms = max(1, int(lease_ttl_s * 1000))
        self._refresh_s = lease_ttl_s / 3
        self._op_timeout_s = max(2.0, lease_ttl_s)
        self._wake_poll_s = wake_poll_s
        self._acquire_script = redis.register_script(_ACQUIRE)
        self._release_script = redis.register_script(_RELEASE)
        self._refresh_script = redis.register_script(_REFRESH)
        self._token_base = f"{socket.gethostname()}:{os.getpid()}"
        # The fallback while Redis is unreachable (see the module docstring).
        self._local = LocalSlots(limit)
        self._retry_s = retry_s
        self._down_since: float | None = None  # monotonic; None while Redis answers
        self._retry_at = 0.0  # monotonic; a degraded acquire tries Redis again from then

    async def acquire(self) -> str:
        """Wait for a slot and return the holder token that ``release`` needs."""
        token = f"{self._token_base}:{uuid.uuid4().hex}"
        args = [self.limit, self._lease_ms, token]
        keys = [self.holders_key, self.wake_key]
        started = time.monotonic()
        try:
            while not await self._bounded(self._acquire_script(keys=keys, args=args)):
                # Any token means "a slot may be free": try again. A stale token costs one retry.
                await self._bounded(
                    self._redis.blpop([self.wake_key], timeout=self._wake_poll_s), self._wake_poll_s
                )
        except BaseException:
            # Cancelled while a command was in flight: the script may have given us a slot we never
            # saw, or BLPOP may have taken a wake-up meant for someone. Releasing fixes both.
            await _shielded(self._release_quietly(token))
            raise
        waited = time.monotonic() - started
        if waited > 0.05:
            logger.debug("model slot acquired", extra={"endpoint": self.name, "waited_s": round(waited, 3)})
        return token

    async def _bounded(self, call: Awaitable[T], extra_s: float = 0.0) -> T:
        """Run one Redis command to its end, even when the caller is cancelled meanwhile.

        Cancelling a redis-py command mid-flight can wedge its connection (seen: a later connect
        retried "Connection lost" until the test's timeout), so a cancel waits for the command,
        which a deadline bounds, and then propagates. No command may outlive a lease.
        """
        task = asyncio.ensure_future(asyncio.wait_for(call, timeout=self._op_timeout_s + extra_s))
        try:
            return await asyncio.shield(task)
        except asyncio.CancelledError:
            await asyncio.wait([task])
            if not task.cancelled():
                task.exception()  # retrieved: the cancel is what the caller sees
            raise

    async def release(self, token: str) -> None:
        """Give the slot back and wake one waiter."""
        await self._bounded(
            self._release_script(
                keys=[self.holders_key, self.wake_key], args=[self.limit, self._lease_ms, token]
            )
        )

    async def _release_quietly(self, token: str) -> None:
        try:
            await self.release(token)
        except _REDIS_DOWN as exc:  # the lease expires on its own
            self._redis_failed(exc)
        except Exception:  # never mask the caller's own error
            logger.warning("model slot release failed; it frees itself when its lease expires",
                           extra={"endpoint": self.name}, exc_info=True)  # fmt: skip
        else:
            self._redis_answered()

    async def _keep_alive(self, token: str) -> None:
        while True:
            await asyncio.sleep(self._refresh_s)
            try:
                if not await self._bounded(
                    self._refresh_script(keys=[self.holders_key], args=[self._lease_ms, token])
                ):
                    logger.warning(
                        "model slot lease had lapsed; re-registered", extra={"endpoint": self.name}
                    )
            except _REDIS_DOWN as exc:  # keep the request going; the next refresh may succeed
                self._redis_failed(exc)
            except Exception:
                logger.warning(
                    "model slot lease refresh failed", extra={"endpoint": self.name}, exc_info=True
                )
            else:
                self._redis_answered()

    @contextlib.asynccontextmanager
    async def slot(self) -> AsyncIterator[None]:
        token = await self._acquire_shared()
        if token is None:  # Redis unreachable: a slot of the local cap, released locally
            async with self._local.slot():
                yield
            return
        refresher = asyncio.create_task(self._keep_alive(token), name=f"model-slot-lease:{self.name}")
        try:
            yield
        finally:
            refresher.cancel()
            await _shielded(self._release_quietly(token))

    @property
    def degraded(self) -> bool:
        """Whether the last Redis command failed (acquires take local slots until one answers)."""
        return self._down_since is not None

    async def _acquire_shared(self) -> str | None:
        """A Redis slot's token, or None when Redis is unreachable (now, or lately and not retried yet)."""
        if self._down_since is not None and time.monotonic() < self._retry_at:
            return None
        try:
            token = await self.acquire()
        except _REDIS_DOWN as exc:
            self._redis_failed(exc)
            return None
        self._redis_answered()
        return token

    def _redis_failed(self, exc: BaseException) -> None:
        now = time.monotonic()
        self._retry_at = now + self._retry_s
        if self._down_since is None:
            self._down_since = now
            logger.warning(
                "model slots: Redis unreachable; capping in-flight requests in this process until it answers",
                extra={"endpoint": self.name, "error": f"{type(exc).__name__}: {exc}"},
            )

    def _redis_answered(self) -> None:
        if self._down_since is not None:
            down_s = time.monotonic() - self._down_since
            self._down_since = None
            logger.info("model slots: Redis answers again", extra={"endpoint": self.name, "down_s": round(down_s, 1)})

    async def holders(self) -> int:
        """How many slots are held right now, expired leases not counted (for tests and metrics)."""
        now_s, now_us = await self._redis.time()
        return int(await self._redis.zcount(self.holders_key, f"({now_s * 1000 + now_us // 1000}", "+inf"))


async def _shielded(coro: Coroutine[Any, Any, None]) -> None:
    """Run a cleanup to completion even if the awaiting task is cancelled again meanwhile.

    On a second cancel the cleanup goes on in the background and CancelledError propagates.
    """
    await asyncio.shield(asyncio.ensure_future(coro))


__all__ = ["LocalSlots", "RedisSlots", "SlotLimiter", "slot_keys"]
