"""Wake-ups for lease waiters and pool managers: "a device became idle", "a lease was released".

A signal is only a hint that the database changed; whoever wakes re-reads the database (a lost or
spurious wake-up costs one query, never a wrong answer). ``LocalSignal`` reaches waiters in this
process only; ``RedisSignal`` also reaches every process subscribed to the same channel prefix
(Redis pub/sub, at most once: a waiter keeps a slow fallback poll against lost messages).

Race-free use: ``token = signal.arm(topic)`` *before* looking in the database, then
``await signal.wait(token, timeout)``. A notify between the two sets the armed token, so the
wait returns at once instead of sleeping through it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

logger = logging.getLogger(__name__)

_SUBSCRIBE_TIMEOUT_S = 5.0
_PUBLISH_TIMEOUT_S = 5.0
_RESUBSCRIBE_S = 1.0  # between attempts while Redis is unreachable

IDLE = "idle"  # a device became idle: lease waiters retry
RELEASED = "released"  # a lease ended (released or reaped): the pool manager resets the device
TOPICS = (IDLE, RELEASED)


class Signal(Protocol):
    """Topic wake-ups: ``arm`` before reading the database, ``wait`` after; ``notify`` after committing."""

    async def arm(self, topic: str) -> asyncio.Event:
        """A token that ``notify(topic)`` sets from now on."""
        ...

    async def wait(self, token: asyncio.Event, timeout: float) -> bool:
        """Until the token is set or ``timeout`` s pass; True if it was set."""
        ...

    async def notify(self, topic: str) -> None:
        """Wake every waiter armed on ``topic`` (here, and in other processes where supported)."""
        ...

    async def close(self) -> None:
        """Release connections; idempotent."""
        ...


async def wait_for_token(token: asyncio.Event, timeout: float) -> bool:
    """Until ``token`` (an armed wake-up) is set or ``timeout`` s pass; True if it was set.

    The wait of every arm/wait signal (this module's, and the events notifier's in orchestrator).
    """
    if token.is_set() or timeout <= 0:
        return token.is_set()
    try:
        await asyncio.wait_for(token.wait(), timeout)
    except TimeoutError:
        return False
    return True


class LocalSignal:
    """Wake-ups within this process only: one ``asyncio.Event`` per topic, replaced on every notify."""

    def __init__(self) -> None:
        self._events: dict[str, asyncio.Event] = {}

    async def arm(self, topic: str) -> asyncio.Event:
        """The topic's current event; the next notify sets it."""
        return self._events.setdefault(topic, asyncio.Event())

    async def wait(self, token: asyncio.Event, timeout: float) -> bool:
        """Until the token is set or ``timeout`` s pass; True if it was set."""
        return await wait_for_token(token, timeout)

    async def notify(self, topic: str) -> None:
        """Set the armed event and start a fresh one, so later waiters are not woken by this notify."""
        self.fire(topic)

    def fire(self, topic: str) -> None:
        """``notify`` without the coroutine: for a subscriber callback."""
        event = self._events.pop(topic, None)
        if event is not None:
            event.set()

    async def close(self) -> None:
        """Wake every waiter (they will find the database unchanged and wait again or give up)."""
        for topic in list(self._events):
            self.fire(topic)


class RedisSignal(LocalSignal):
    """Wake-ups across processes through Redis pub/sub on ``{prefix}{topic}``, fanned out to local events.

    One subscriber connection per process (not per waiter), started by the first ``arm``; a message
    from any process (this one included) sets the local event. ``notify`` also sets it locally at
    once, so a waiter here does not depend on the round trip through Redis.
    """

    def __init__(self, url: str, *, prefix: str = "phonefleet:pool:") -> None:
        super().__init__()
        self.url = url
        self.prefix = prefix
        self._client: aioredis.Redis | None = None
        self._reader: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def arm(self, topic: str) -> asyncio.Event:
        """Subscribe (once) before handing out the token, so no notify after this call is missed.

        With Redis down, the first failed attempt ends the wait (the token is then a local one plus
        the waiter's poll) and the reader goes on retrying in the background.
        """
        if self._reader is None or self._reader.done():
            self._ready = asyncio.Event()
            self._reader = asyncio.create_task(self._read(self._ready), name="pool-signal-reader")
            try:
                await asyncio.wait_for(self._ready.wait(), _SUBSCRIBE_TIMEOUT_S)
            except TimeoutError:
                # Redis down: waiters still have their fallback poll, so this is not fatal; the
                # reader keeps retrying and later arms do not wait for it again.
                logger.warning("pool wake-ups not subscribed; relying on polling", extra={"topic": topic})
        return await super().arm(topic)

    async def notify(self, topic: str) -> None:
        """Set the local event and publish; a Redis outage is logged, never raised (waiters still poll)."""
        self.fire(topic)
        try:
            await asyncio.wait_for(self._redis().publish(self.prefix + topic, b"1"), _PUBLISH_TIMEOUT_S)
        except (RedisError, OSError, TimeoutError) as exc:
            logger.warning("could not publish a pool wake-up", extra={"topic": topic, "error": str(exc)})

    async def close(self) -> None:
        """Stop the subscriber, close the connection, wake local waiters."""
        reader, self._reader = self._reader, None
        if reader is not None:
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await reader
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
        await super().close()

    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            self._client = aioredis.Redis.from_url(self.url, socket_connect_timeout=5)
        return self._client

    async def _read(self, ready: asyncio.Event) -> None:
        channels = {self.prefix + topic: topic for topic in TOPICS}
        down = False  # one warning per outage, not one per retry
        while True:
            pubsub = self._redis().pubsub()
            try:
                await pubsub.subscribe(*channels)
                confirmed = 0
                async for message in pubsub.listen():
                    kind = message.get("type")
                    channel = message.get("channel")
                    channel = channel.decode() if isinstance(channel, bytes) else channel
                    if kind == "subscribe":
                        confirmed += 1
                        if confirmed == len(channels):
                            # Subscribed (again): what was published meanwhile is lost, so wake all.
                            ready.set()
                            if down:
                                down = False
                                logger.info("pool wake-ups subscribed again")
                            for topic in TOPICS:
                                self.fire(topic)
                    elif kind == "message" and channel in channels:
                        self.fire(channels[channel])
            except (RedisError, OSError) as exc:
                if not down:
                    down = True
                    logger.warning("pool wake-up subscriber lost Redis; retrying, waiters poll meanwhile",
                                   extra={"url": _safe(self.url), "error": str(exc)})  # fmt: skip
                # The first arm need not wait out its deadline: waiters poll until Redis is back.
                ready.set()
                await asyncio.sleep(_RESUBSCRIBE_S)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()


def _safe(url: str) -> str:
    """``url`` without its password, for a log line."""
    scheme, sep, rest = url.partition("://")
    return f"{scheme}{sep}{rest.rpartition('@')[2]}" if sep else url


def signal_for(redis_url: str | None) -> LocalSignal:
    """Through Redis when a URL is set (wake-ups reach other processes), else within this process."""
    return RedisSignal(redis_url) if redis_url else LocalSignal()


__all__ = ["IDLE", "RELEASED", "TOPICS", "LocalSignal", "RedisSignal", "Signal", "signal_for", "wait_for_token"]
