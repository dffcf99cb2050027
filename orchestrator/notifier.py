"""A wake-up hint, "new events were committed", for the events hub and the webhook relay.

The ``events`` table is the truth; this only says "look again now" so readers need not wait for
their next poll. Writers call ``notify()`` *after* their transaction commits (a hint before the
commit could wake a reader that then finds nothing and sleeps through the row). Readers
``arm()`` a token *before* reading the database and ``wait()`` on it afterwards, so a notify in
between is never slept through.

- Without Redis (``EventSignal(None)``): a notify wakes readers in this process only; other
  processes find the rows at their next poll.
- With Redis: a notify also PUBLISHes to ``channel``; one subscriber per process (started by the
  first ``arm``) turns every message into a local wake-up. Publishing is fire-and-forget and
  coalesced (a burst of commits costs at most two PUBLISHes), so a commit never waits on Redis and a
  Redis outage is logged, never raised. Messages are at most once: readers keep polling.

A ``redis.asyncio`` client belongs to the event loop that made it: build one ``EventSignal`` per
loop (per API process; per run in a worker).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from device_pool.pool.signals import wait_for_token

__all__ = ["CHANNEL", "PAYLOAD", "EventSignal"]

logger = logging.getLogger(__name__)

CHANNEL = "phonefleet:events"
PAYLOAD = b"1"  # what is published: subscribers only look at the fact of a message
_TIMEOUT_S = 5.0
_RESUBSCRIBE_S = 1.0


class EventSignal:
    """Wake-ups for readers of the ``events`` table, in this process and (with Redis) in others."""

    def __init__(self, redis_url: str | None, *, channel: str = CHANNEL) -> None:
        self.redis_url = redis_url
        self.channel = channel
        self._token = asyncio.Event()
        self._client: aioredis.Redis | None = None
        self._publisher: asyncio.Task[None] | None = None
        self._again = False
        self._reader: asyncio.Task[None] | None = None
        self._closed = False
        self._publish_failing = False  # one warning per outage, not one per commit

    def notify(self, *, local: bool = True, remote: bool = True) -> None:
        """Events were committed: wake local readers now, and publish (without waiting) if Redis is set.

        ``remote=False`` when the caller PUBLISHes ``PAYLOAD`` to ``channel`` on ``redis_url`` itself
        (a task submission does, in the pipeline of its enqueue: one round trip for both).
        """
        if local:
            self._fire()
        if not remote or self.redis_url is None or self._closed:
            return
        if self._publisher is not None and not self._publisher.done():
            self._again = True  # the running publisher sends once more when it is done
            return
        self._publisher = asyncio.get_running_loop().create_task(self._publish(), name="events-publish")

    async def arm(self) -> asyncio.Event:
        """A token the next notify (here, or a message from another process) sets."""
        if self.redis_url is not None and not self._closed and (self._reader is None or self._reader.done()):
            ready = asyncio.Event()
            self._reader = asyncio.create_task(self._read(ready), name="events-subscriber")
            try:
                await asyncio.wait_for(ready.wait(), _TIMEOUT_S)
            except TimeoutError:
                logger.warning("event wake-ups not subscribed; relying on polling")
        return self._token

    async def wait(self, token: asyncio.Event, timeout: float) -> bool:
        """Until ``token`` is set or ``timeout`` s pass; True if it was set."""
        return await wait_for_token(token, timeout)

    async def close(self) -> None:
        """Stop subscribing and publishing; wake every waiter. Idempotent."""
        self._closed = True
        for task in (self._reader, self._publisher):
            if task is not None and not task.done():
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._reader = self._publisher = None
        client, self._client = self._client, None
        if client is not None:
            await client.aclose()
        self._fire()

    def _fire(self) -> None:
        # Set the armed token and hand out a fresh one: later arms are not woken by this notify.
        token, self._token = self._token, asyncio.Event()
        token.set()

    def _redis(self) -> aioredis.Redis:
        if self._client is None:
            assert self.redis_url is not None
            self._client = aioredis.Redis.from_url(self.redis_url, socket_connect_timeout=_TIMEOUT_S)
        return self._client

    async def _publish(self) -> None:
        while True:
            self._again = False
            try:
                await asyncio.wait_for(self._redis().publish(self.channel, PAYLOAD), _TIMEOUT_S)
            except (RedisError, OSError, TimeoutError) as exc:
                if not self._publish_failing:
                    self._publish_failing = True
                    logger.warning("could not publish an events wake-up; readers poll until Redis is back",
                                   extra={"error": str(exc)})  # fmt: skip
                return
            if self._publish_failing:
                self._publish_failing = False
                logger.info("events wake-ups published again")
            if not self._again:
                return

    async def _read(self, ready: asyncio.Event) -> None:
        down = False  # one warning per outage, not one per retry
        while True:
            pubsub = self._redis().pubsub()
            try:
                await pubsub.subscribe(self.channel)
                async for message in pubsub.listen():
                    if message.get("type") == "subscribe":
                        ready.set()
                        if down:
                            down = False
                            logger.info("events wake-ups subscribed again")
                    # (Re)subscribed or a message: either way, look. Messages published while we
                    # were not subscribed are lost, so a resubscription wakes readers too.
                    self._fire()
            except (RedisError, OSError) as exc:
                if not down:
                    down = True
                    logger.warning("events wake-up subscriber lost Redis; retrying, readers poll meanwhile",
                                   extra={"error": str(exc)})  # fmt: skip
                ready.set()  # the first arm need not wait out its deadline: readers poll meanwhile
                await asyncio.sleep(_RESUBSCRIBE_S)
            finally:
                with contextlib.suppress(RedisError, OSError):
                    await pubsub.aclose()
