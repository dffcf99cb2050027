"""One capture per phone across API processes: the stream owner, found through Redis, and its relay.

Without Redis each API process captures the phones its viewers watch (``stream.py``). With Redis
(several processes: ``phonefleet api --workers N``, several hosts) one process per phone is its
**stream owner**: it holds ``{prefix}live:owner:{device_id}`` (SET NX with a TTL of
``webrtc.stream_owner_ttl_s``, renewed at a third of it), runs the capture as a lone process would, and
publishes each picture on ``{prefix}live:units:{device_id}``. Every other process with viewers of the
phone subscribes to that channel instead of capturing: its ``PhoneStream`` gets the owner's pictures
as if from a capture of its own (``SharedCapture`` decides which, each time the stream opens one).

The publish format is meant for any publisher (the worker's task recorder may become one):

    unit message  = version (1 byte, 1) | flags (1 byte: 1 keyframe, 2 replay) | video width (u16 BE)
                    | video height (u16 BE) | one access unit in Annex B (a keyframe carries its SPS/PPS)
    ask message   = b"gop" (a subscriber joined: send your pictures since the last keyframe again,
                    flagged replay) | b"key" (a viewer lost pictures: a new keyframe, please), published
                    on ``{prefix}live:asks:{device_id}``.

Pub/sub, not a Redis Stream: a picture is worth something only for the next few milliseconds, so nothing
is stored, and the one thing a joiner needs from the past — the pictures since the last keyframe — the
owner already keeps in memory for its own joiners (``PhoneStream``'s GOP). A joiner asks for them
(``gop``); subscribers that already have a keyframe ignore replays. Everything the owner publishes leaves
through one connection in order, so a replay and the live pictures after it arrive in that order.

The owner keeps streaming while another process still subscribes (``listeners``), even with no viewer
of its own. When it stops (released) or dies (the key expires), a subscriber sees the key gone within
a check (``ttl / 3``), ends its relay, and its stream's next ``SharedCapture`` claims the phone and
captures. A Redis failure never costs the picture: the process then captures on its own.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import struct
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any, Protocol

import redis.asyncio as aioredis
from redis.exceptions import RedisError

from orchestrator.live.geometry import VideoGeometry
from orchestrator.live.h264 import AccessUnit

__all__ = ["SharedCapture", "StreamRelay", "pack_unit", "unpack_unit"]

logger = logging.getLogger(__name__)

VERSION = 1
KEYFRAME, REPLAY = 1, 2
ASK_GOP, ASK_KEY = b"gop", b"key"
_HEADER = struct.Struct(">BBHH")
_REDIS_DOWN = (RedisError, OSError, TimeoutError)
_TIMEOUT_S = 2.0
# Lua: act only while the key is still ours (an owner that stalled past the TTL must not renew or
# delete the next owner's claim).
_RENEW = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('pexpire', KEYS[1], ARGV[2]) end return 0"
_RELEASE = "if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0"


def pack_unit(unit: AccessUnit, video: tuple[int, int], *, replay: bool = False) -> bytes:
    flags = (KEYFRAME if unit.keyframe else 0) | (REPLAY if replay else 0)
    return _HEADER.pack(VERSION, flags, *video) + unit.data


def unpack_unit(message: bytes) -> tuple[AccessUnit, tuple[int, int], bool] | None:
    """(unit, video size, replay), or None for a message of another version."""
    if len(message) < _HEADER.size:
        return None
    version, flags, width, height = _HEADER.unpack_from(message)
    if version != VERSION:
        return None
    return AccessUnit(message[_HEADER.size :], bool(flags & KEYFRAME)), (width, height), bool(flags & REPLAY)


class OwnedStream(Protocol):
    """What the owner needs of its ``PhoneStream`` to answer asks."""

    geometry: VideoGeometry

    def replay(self) -> list[AccessUnit] | None: ...
    def request_keyframe(self) -> None: ...


class StreamRelay:
    """This process's side of stream ownership (one per ``LiveHub``, on its event loop)."""

    def __init__(self, redis_url: str, *, prefix: str = "phonefleet:", ttl_s: float = 3.0) -> None:
        self.prefix = prefix
        self.ttl_s = ttl_s
        self.token = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self._redis = aioredis.Redis.from_url(redis_url, socket_connect_timeout=_TIMEOUT_S)
        self._outbox: asyncio.Queue[tuple[str, bytes, object, int]] = asyncio.Queue()
        # Phones whose pictures reached no subscriber: not published until one asks (a lone process
        # pays nothing per picture). ``_asked`` counts asks, so a PUBLISH that went out before an ask
        # and found nobody does not silence the phone after it.
        self._quiet: set[object] = set()
        self._asked: dict[object, int] = {}
        self._writer: asyncio.Task[None] | None = None
        self._owned: dict[Any, asyncio.Task[None]] = {}  # device → its renew-and-answer task
        self._lost: dict[Any, Callable[[], None]] = {}
        self._warned = False

    # --- names ---------------------------------------------------------------------------------

    def owner_key(self, device_id: object) -> str:
        return f"{self.prefix}live:owner:{device_id}"

    def units_channel(self, device_id: object) -> str:
        return f"{self.prefix}live:units:{device_id}"

    def asks_channel(self, device_id: object) -> str:
        return f"{self.prefix}live:asks:{device_id}"

    @property
    def check_s(self) -> float:
        return self.ttl_s / 3

    # --- ownership -----------------------------------------------------------------------------

    def owns(self, device_id: object) -> bool:
        return device_id in self._owned

    async def claim(self, device_id: object, stream: OwnedStream, on_lost: Callable[[], None]) -> bool:
        """Become (or stay) the phone's stream owner; False: another process is. Redis down: True
        (this process captures on its own rather than show nothing)."""
        if device_id in self._owned:
            return True
        try:
            key, ttl_ms = self.owner_key(device_id), int(self.ttl_s * 1000)
            won = await self._redis.set(key, self.token, nx=True, px=ttl_ms)
            if not won:
                return False
        except _REDIS_DOWN as exc:
            self._warn(exc)
            return True
        self._lost[device_id] = on_lost
        self._owned[device_id] = asyncio.create_task(
            self._own(device_id, stream), name=f"live-owner-{device_id}"
        )
        logger.info("live stream owner", extra={"device_id": str(device_id), "owner": self.token})
        return True

    async def release(self, device_id: object) -> None:
        task = self._owned.pop(device_id, None)
        self._lost.pop(device_id, None)
        self._quiet.discard(device_id)
        self._asked.pop(device_id, None)
        if task is None:
            return
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        with contextlib.suppress(*_REDIS_DOWN):
            await self._redis.eval(_RELEASE, 1, self.owner_key(device_id), self.token)

    async def listeners(self, device_id: object) -> int:
        """Other processes subscribed to this phone's pictures (0 when Redis cannot say)."""
        try:
            counts = await self._redis.pubsub_numsub(self.units_channel(device_id))
        except _REDIS_DOWN:
            return 0
        return int(counts[0][1]) if counts else 0

    async def owner(self, device_id: object) -> str | None:
        value = await self._redis.get(self.owner_key(device_id))
        return value.decode() if value is not None else None

    async def _own(self, device_id: object, stream: OwnedStream) -> None:
        """Renew the claim and answer subscribers' asks until released (or the claim is lost)."""
        pubsub = self._redis.pubsub()
        key, ttl_ms = self.owner_key(device_id), int(self.ttl_s * 1000)
        try:
            await pubsub.subscribe(self.asks_channel(device_id))
            loop = asyncio.get_running_loop()
            renew_at = loop.time() + self.check_s
            while True:
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=self.check_s)
                if message is not None and message.get("type") == "message":
                    try:
                        self._answer(device_id, stream, message["data"])
                    except Exception:  # an ask must never stop the renewal (the key would pass on)
                        logger.exception("live relay: an ask failed", extra={"device_id": str(device_id)})
                if loop.time() >= renew_at:
                    renew_at = loop.time() + self.check_s
                    if not await self._redis.eval(_RENEW, 1, key, self.token, ttl_ms):
                        logger.warning("live stream ownership lost", extra={"device_id": str(device_id)})
                        self._owned.pop(device_id, None)
                        lost = self._lost.pop(device_id, None)
                        if lost is not None:
                            lost()
                        return
        except _REDIS_DOWN as exc:
            self._warn(exc)  # the capture goes on; the key expires and another process may claim it
        finally:
            with contextlib.suppress(*_REDIS_DOWN):
                await pubsub.aclose()

    def _answer(self, device_id: object, stream: OwnedStream, ask: bytes) -> None:
        self._asked[device_id] = self._asked.get(device_id, 0) + 1
        self._quiet.discard(device_id)
        if ask == ASK_GOP:
            units = stream.replay()
            if units is None:  # no usable GOP in memory: a fresh keyframe serves the joiner
                stream.request_keyframe()
                return
            for unit in units:
                self.publish(device_id, unit, stream.geometry.video, replay=True)
        elif ask == ASK_KEY:
            stream.request_keyframe()

    # --- pictures out --------------------------------------------------------------------------

    def publish(
        self, device_id: object, unit: AccessUnit, video: tuple[int, int], *, replay: bool = False
    ) -> None:
        """Queue one picture for the subscribers (never waits; one writer keeps the order)."""
        if device_id in self._quiet:
            return
        self._send(self.units_channel(device_id), pack_unit(unit, video, replay=replay), device_id)

    def _send(self, channel: str, payload: bytes, device_id: object = None) -> None:
        self._outbox.put_nowait((channel, payload, device_id, self._asked.get(device_id, 0)))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write(), name="live-relay-writer")

    async def _write(self) -> None:
        # Ends when the outbox is empty (the next publish starts another): nothing idles per process.
        while not self._outbox.empty():
            batch = []
            while not self._outbox.empty() and len(batch) < 64:
                batch.append(self._outbox.get_nowait())
            try:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for channel, payload, _, _ in batch:
                        pipe.publish(channel, payload)
                    received = await pipe.execute()
            except _REDIS_DOWN as exc:
                self._warn(exc)
                continue
            for (_, _, device_id, asked), count in zip(batch, received, strict=True):
                if device_id is not None and not count and asked == self._asked.get(device_id, 0):
                    self._quiet.add(device_id)

    def ask(self, device_id: object, what: bytes) -> None:
        """Ask the owner for ``gop`` or ``key`` (never waits)."""
        self._send(self.asks_channel(device_id), what)

    def subscribe(self, device_id: object, geometry: VideoGeometry) -> RelayedCapture:
        return RelayedCapture(self, device_id, geometry)

    def _warn(self, exc: BaseException) -> None:
        if not self._warned:
            self._warned = True
            logger.warning("live stream relay: Redis unavailable, capturing here", extra={"error": str(exc)})

    async def close(self) -> None:
        for device_id in list(self._owned):
            await self.release(device_id)
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._writer
        await self._redis.aclose()


class RelayedCapture:
    """The owner's pictures, read from Redis: a capture's face (``open``, ``units``, ``close``) for a
    ``PhoneStream`` in a process that does not own the phone. Ends when the owner goes away."""

    damaged = False

    def __init__(self, relay: StreamRelay, device_id: object, geometry: VideoGeometry) -> None:
        self.relay = relay
        self.device_id = device_id
        self.video = geometry.video
        self._pubsub: Any = None
        self._closing = False
        self._warned_size = False

    async def open(self, timeout: float = 10.0) -> None:
        async with asyncio.timeout(timeout):
            self._pubsub = self.relay._redis.pubsub()
            await self._pubsub.subscribe(self.relay.units_channel(self.device_id))
        self.relay.ask(
            self.device_id, ASK_GOP
        )  # subscribed first: nothing between the GOP and what follows is lost

    def request_keyframe(self) -> bool:
        self.relay.ask(self.device_id, ASK_KEY)
        return True

    def close(self) -> None:
        self._closing = True

    async def units(self) -> AsyncIterator[AccessUnit]:
        assert self._pubsub is not None, "open() first"
        relay, pubsub = self.relay, self._pubsub
        loop = asyncio.get_running_loop()
        keyed = False
        check_at = asked_at = loop.time() + relay.check_s
        try:
            while not self._closing:
                try:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=relay.check_s)
                    if loop.time() >= check_at:
                        check_at = loop.time() + relay.check_s
                        if await relay.owner(self.device_id) is None:
                            return  # the owner stopped or died: the stream's next capture claims the phone
                except _REDIS_DOWN as exc:
                    relay._warn(exc)
                    return
                if not keyed and loop.time() >= asked_at:
                    asked_at = loop.time() + relay.check_s
                    relay.ask(self.device_id, ASK_GOP)  # the first ask (or its answer) was lost
                if message is None or message.get("type") != "message" or self._closing:
                    continue
                parsed = unpack_unit(message["data"])
                if parsed is None:
                    continue
                unit, video, replay = parsed
                if video != self.video and not self._warned_size:
                    self._warned_size = True
                    logger.warning("live relay: the owner's video is %sx%s, this process expected %sx%s",
                                   *video, *self.video)  # fmt: skip
                if replay and keyed:
                    continue  # a replay for another joiner
                if not keyed and not unit.keyframe:
                    continue
                keyed = True
                yield unit
        finally:
            with contextlib.suppress(*_REDIS_DOWN):
                await pubsub.aclose()


class SharedCapture:
    """What a ``PhoneStream`` opens when Redis is set: the phone's own capture if this process owns (or
    can claim) the phone — its pictures then also published — else the owner's, relayed."""

    def __init__(
        self, relay: StreamRelay, device_id: object, geometry: VideoGeometry, local: Callable[[], Any],
        stream: Callable[[], OwnedStream],
    ) -> None:  # fmt: skip
        self.relay = relay
        self.device_id = device_id
        self.geometry = geometry
        self._local = local
        self._stream = stream
        self.inner: Any = None
        self.owner = False

    @property
    def damaged(self) -> bool:
        return bool(self.inner is not None and self.inner.damaged)

    @damaged.setter
    def damaged(self, value: bool) -> None:
        if self.inner is not None:
            self.inner.damaged = value

    async def open(self, timeout: float = 10.0) -> None:
        self.owner = await self.relay.claim(self.device_id, self._stream(), self.close)
        if not self.owner:
            self.inner = self.relay.subscribe(self.device_id, self.geometry)
            try:
                await self.inner.open(timeout)
                return
            except _REDIS_DOWN as exc:  # a picture from a capture of our own beats none
                self.relay._warn(exc)
                self.owner = True
        self.inner = self._local()
        try:
            await self.inner.open(timeout)
        except BaseException:
            await self.relay.release(self.device_id)  # the phone cannot stream from here: let another try
            raise

    def request_keyframe(self) -> bool:
        ask = getattr(self.inner, "request_keyframe", None)
        return bool(ask is not None and ask())

    def close(self) -> None:
        if self.inner is not None:
            self.inner.close()

    async def units(self) -> AsyncIterator[AccessUnit]:
        publish = self.owner and self.relay.owns(self.device_id)
        video = self.geometry.video
        async for unit in self.inner.units():
            if publish:
                self.relay.publish(self.device_id, unit, video)
            yield unit
