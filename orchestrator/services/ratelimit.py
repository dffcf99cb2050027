"""Per-tenant token buckets for task submission: in process, or shared by every API process through Redis.

Two implementations of one contract, ``RateLimiter.take(key)`` (spend one token of ``key``'s bucket,
or raise ``RateLimited`` with the wait → 429 with Retry-After):

- ``TokenBuckets``: in this process only. Each API process (``phonefleet api --workers N``, or N
  replicas) limits on its own, so a tenant gets up to N times the rate. Used without Redis.
- ``RedisTokenBuckets``: one bucket per tenant in Redis (a hash: tokens, last refill in µs), changed by
  one Lua script that refills by the time elapsed on **Redis's** clock (``TIME``, so hosts with skewed
  clocks agree) and takes a token or returns the wait. Every process sharing the Redis and key prefix
  shares the limit. The key expires once a full refill would have happened anyway (burst / rate), so
  idle tenants cost no memory and no state is lost by the expiry.

**Redis down: degrade, don't refuse.** A Redis error (refused, timed out) never fails a submission:
the limiter logs a warning (at most one per ``warn_every_s``) and falls back to its in-process
``TokenBuckets`` for ``retry_s``, so each process still enforces the limit on its own (the rate a
tenant gets is then up to N times the configured one), and no request waits on a dead Redis's
timeouts more than once per ``retry_s``. Submissions matter more than exact limits; the task store,
not Redis, is the truth.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from dataclasses import dataclass
from typing import Protocol

import redis.asyncio as aioredis
import redis.exceptions

from orchestrator.errors import RateLimited
from orchestrator.settings import Settings

__all__ = ["RateLimiter", "RedisTokenBuckets", "TokenBuckets", "make_rate_limiter"]

logger = logging.getLogger(__name__)

# KEYS[1]: the bucket hash. ARGV: rate per second, burst, key TTL in ms.
# Returns {1, "0"} when a token was taken, else {0, wait_s} (a string: Lua numbers returned to Redis
# are truncated to integers). Times are µs on Redis's clock, stored with %.0f so no digit is lost.
_TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000000 + tonumber(t[2])
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local saved = redis.call('HMGET', KEYS[1], 'tokens', 'at')
local tokens = tonumber(saved[1])
local at = tonumber(saved[2])
if tokens == nil or at == nil then
  tokens = burst
  at = now
end
tokens = math.min(burst, tokens + math.max(0, now - at) / 1000000 * rate)
local taken = 0
local wait = 0
if tokens >= 1 then
  tokens = tokens - 1
  taken = 1
else
  wait = (1 - tokens) / rate
end
redis.call('HSET', KEYS[1], 'tokens', string.format('%.17g', tokens), 'at', string.format('%.0f', now))
redis.call('PEXPIRE', KEYS[1], tonumber(ARGV[3]))
return {taken, string.format('%.6f', wait)}
"""

# Connections per limiter (per API process): one script call is ~0.1 ms, so a few serve hundreds/s.
_MAX_CONNECTIONS = 16

# Errors that mean "Redis is not answering", as opposed to a bug in our call.
_REDIS_DOWN: tuple[type[BaseException], ...] = (redis.exceptions.RedisError, OSError, TimeoutError)


class RateLimiter(Protocol):
    """Spends one token per call for a key (a tenant id)."""

    async def take(self, key: uuid.UUID) -> None:
        """Raises ``RateLimited`` (with ``retry_after_s``) when the key's bucket is empty."""
        ...

    async def warm(self) -> None:
        """Connect now rather than on the first submission (the app's lifespan calls it)."""
        ...

    async def close(self) -> None:
        """Release connections (the app's lifespan calls it)."""
        ...


def _limited(rate_per_s: float, burst: int, wait_s: float) -> RateLimited:
    return RateLimited(
        f"too many tasks submitted: at most {rate_per_s:g}/s (burst {burst}) per tenant",
        retry_after_s=round(wait_s, 3),
    )


@dataclass
class _Bucket:
    tokens: float
    at: float  # time.monotonic() of the last refill


class TokenBuckets:
    """``rate_per_s`` tokens a second per key, at most ``burst`` saved up; this process only."""

    def __init__(self, rate_per_s: float, burst: int, *, max_keys: int = 100_000) -> None:
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.max_keys = max_keys
        self._buckets: dict[uuid.UUID, _Bucket] = {}

    async def take(self, key: uuid.UUID) -> None:
        """Spend one token of ``key``'s bucket; raises ``RateLimited`` (with the wait) when empty."""
        self.take_now(key)

    def take_now(self, key: uuid.UUID) -> None:
        """``take`` without awaiting (no I/O happens here)."""
        now = time.monotonic()
        bucket = self._buckets.get(key)
        if bucket is None:
            if len(self._buckets) >= self.max_keys:
                self._buckets.clear()  # a full reset is generous for a moment, and bounds memory
            bucket = self._buckets[key] = _Bucket(float(self.burst), now)
        bucket.tokens = min(float(self.burst), bucket.tokens + (now - bucket.at) * self.rate_per_s)
        bucket.at = now
        if bucket.tokens < 1.0:
            raise _limited(self.rate_per_s, self.burst, (1.0 - bucket.tokens) / self.rate_per_s)
        bucket.tokens -= 1.0

    async def warm(self) -> None:
        """Nothing to open."""

    async def close(self) -> None:
        return None


class RedisTokenBuckets:
    """The same buckets in Redis, shared by every process using ``redis`` and ``prefix``.

    Keys are ``{prefix}ratelimit:tasks:{key}``. ``redis`` should have short socket timeouts
    (``from_url`` sets 1 s): a submission waits at most that long on a hung Redis, once per ``retry_s``.
    """

    def __init__(
        self,
        redis: aioredis.Redis,
        rate_per_s: float,
        burst: int,
        *,
        prefix: str = "phonefleet:",
        retry_s: float = 5.0,
        warn_every_s: float = 30.0,
        owns_client: bool = False,
    ) -> None:
        if rate_per_s <= 0 or burst < 1:
            raise ValueError("rate_per_s must be > 0 and burst >= 1")
        self.rate_per_s = rate_per_s
        self.burst = burst
        self.prefix = prefix
        self.retry_s = retry_s
        self.warn_every_s = warn_every_s
        self.fallback = TokenBuckets(rate_per_s, burst)
        self._redis = redis
        self._owns_client = owns_client
        self._script = redis.register_script(_TAKE)
        # A bucket left alone this long is full again: the key can go.
        self._ttl_ms = math.ceil(burst / rate_per_s * 1000) + 1000
        self._skip_until = 0.0  # time.monotonic(): use the fallback until then (Redis just failed)
        self._warned_at = -math.inf

    @classmethod
    def from_url(
        cls, url: str, rate_per_s: float, burst: int, *, prefix: str = "phonefleet:", retry_s: float = 5.0
    ) -> RedisTokenBuckets:
        """A limiter with its own client (closed by ``close``).

        A blocking pool: a burst of submissions queues for one of ``_MAX_CONNECTIONS`` (as long as 1 s)
        instead of failing with "Too many connections" and dropping to the per-process fallback.
        """
        pool = aioredis.BlockingConnectionPool.from_url(
            url, max_connections=_MAX_CONNECTIONS, timeout=1, socket_connect_timeout=1, socket_timeout=1
        )
        client = aioredis.Redis.from_pool(pool)
        return cls(client, rate_per_s, burst, prefix=prefix, retry_s=retry_s, owns_client=True)

    def key_for(self, key: uuid.UUID) -> str:
        return f"{self.prefix}ratelimit:tasks:{key}"

    async def take(self, key: uuid.UUID) -> None:
        """Spend one token of the shared bucket; raises ``RateLimited``. Redis down → the local bucket."""
        if time.monotonic() < self._skip_until:
            self.fallback.take_now(key)
            return
        try:
            taken, wait = await self._script(
                keys=[self.key_for(key)], args=[self.rate_per_s, self.burst, self._ttl_ms]
            )
        except _REDIS_DOWN as exc:
            self._skip_until = time.monotonic() + self.retry_s
            self._warn(exc)
            self.fallback.take_now(key)
            return
        if not int(taken):
            raise _limited(self.rate_per_s, self.burst, float(wait))

    def _warn(self, exc: BaseException) -> None:
        now = time.monotonic()
        if now - self._warned_at < self.warn_every_s:
            return
        self._warned_at = now
        logger.warning(
            "rate limiter: Redis unavailable, limiting in this process only for the next %gs",
            self.retry_s,
            extra={"error": f"{type(exc).__name__}: {exc}"},
        )

    async def warm(self) -> None:
        """Load the script and open a connection; Redis down is for ``take`` to handle."""
        try:
            await self._redis.script_load(_TAKE)
        except _REDIS_DOWN as exc:
            self._warn(exc)

    async def close(self) -> None:
        if self._owns_client:
            await self._redis.aclose()


def make_rate_limiter(settings: Settings, *, prefix: str = "phonefleet:") -> RateLimiter:
    """Redis buckets when ``settings.redis_url`` is set (shared by every API process), else in-process."""
    rate, burst = settings.auth.rate_limit_per_s, settings.auth.rate_limit_burst
    if settings.redis_url:
        return RedisTokenBuckets.from_url(settings.redis_url, rate, burst, prefix=prefix)
    return TokenBuckets(rate, burst)
