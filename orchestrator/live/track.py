"""One viewer's video track: the phone's encoded pictures, shared, queued for this viewer's sender.

aiortc's sender calls ``recv()``; returning an ``av.Packet`` (not a frame) makes it packetise the
bytes as they are — no encoder per viewer. Every viewer of a phone is handed the same packet
objects. A viewer must start at a keyframe and may not skip a picture (the next ones refer to it),
so the queue refuses everything before the first keyframe, and a viewer that falls
``max_queue`` pictures behind drops its backlog and waits for the next keyframe, asking for one.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import av
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

__all__ = ["PacketTrack"]


class PacketTrack(MediaStreamTrack):
    kind = "video"

    def __init__(self, request_keyframe: Callable[[], None], max_queue: int = 60) -> None:
        super().__init__()
        self._request_keyframe = request_keyframe
        self._queue: asyncio.Queue[av.Packet | None] = asyncio.Queue()
        self._max_queue = max_queue
        self._waiting_for_key = True
        self.sent = 0  # pictures handed to the sender

    def offer(self, packet: av.Packet, keyframe: bool) -> None:
        """The next picture of the phone (called by the stream, in order)."""
        if self.readyState != "live":
            return
        if self._waiting_for_key and not keyframe:
            return
        if self._queue.qsize() >= self._max_queue:
            while not self._queue.empty():
                self._queue.get_nowait()
            self._waiting_for_key = True
            if not keyframe:
                self._request_keyframe()
                return
        self._waiting_for_key = False
        self._queue.put_nowait(packet)

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        packet = await self._queue.get()
        if packet is None:
            raise MediaStreamError
        self.sent += 1
        return packet

    def stop(self) -> None:
        if self.readyState == "live":
            super().stop()
            self._queue.put_nowait(None)  # wakes a sender blocked in recv()
