"""A real WebRTC viewer for tests and the benchmark: an aiortc peer that watches a phone through the API.

It offers what a browser offers (a recvonly video transceiver and a ``control`` data channel),
posts the complete offer, applies the answer, decodes the H.264 it receives (aiortc's decoder, as a
browser would) and matches the acks of the messages it sends. ICE must reach the API on loopback:
the API's settings pin host candidates to 127.0.0.1, which (``orchestrator/live/ice.py``) applies
to every peer in the process — this client included, when it runs in the same process.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import Callable
from typing import Any

import av
import httpx
import numpy as np
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

__all__ = ["LiveClient", "watch_once"]


class LiveClient:
    def __init__(self, *, on_frame: Callable[[av.VideoFrame], None] | None = None) -> None:
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.frames = 0
        self.last_frame: av.VideoFrame | None = None
        self.messages: list[dict[str, Any]] = []  # everything the server sent but acks
        self.answer: dict[str, Any] | None = None
        self.channel: Any = None
        self._on_frame = on_frame
        self._ids = itertools.count(1)
        self._acks: dict[Any, asyncio.Future[dict[str, Any]]] = {}
        self._reader: asyncio.Task[None] | None = None
        self._channel_open = asyncio.Event()
        self.pc.on("track", self._track)

    async def connect(
        self, http: httpx.AsyncClient, path: str, *, control: bool = True, extra: dict[str, Any] | None = None
    ) -> httpx.Response:
        """Offer, post, answer. Returns the API's response (the answer applied only on 200).
        ``extra``: more fields for the body (a share page's ``open_id``)."""
        self.pc.addTransceiver("video", direction="recvonly")
        if control:
            self.channel = self.pc.createDataChannel("control")
            self.channel.on("message", self._message)
            self.channel.on("open", self._channel_open.set)
        await self.pc.setLocalDescription(await self.pc.createOffer())
        body = {"type": "offer", "sdp": self.pc.localDescription.sdp, **(extra or {})}
        response = await http.post(path, json=body)
        if response.status_code == 200:
            self.answer = response.json()
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=self.answer["sdp"], type="answer"))
        return response

    async def wait_frames(self, count: int, timeout: float = 20.0) -> av.VideoFrame:
        """Until ``count`` frames in all have been decoded; the last one."""
        async with asyncio.timeout(timeout):
            while self.frames < count:
                await asyncio.sleep(0.02)
        assert self.last_frame is not None
        return self.last_frame

    async def wait_message(self, type_: str, timeout: float = 10.0) -> dict[str, Any]:
        """The first server message of ``type_`` (hello, control, bye)."""
        async with asyncio.timeout(timeout):
            while True:
                for message in self.messages:
                    if message.get("type") == type_:
                        return message
                await asyncio.sleep(0.02)

    async def request(self, message: dict[str, Any], timeout: float = 15.0) -> dict[str, Any]:
        """Send one message on ``control`` and wait for its ack."""
        async with asyncio.timeout(timeout):
            await self._channel_open.wait()
        message_id = next(self._ids)
        future = asyncio.get_running_loop().create_future()
        self._acks[message_id] = future
        self.channel.send(json.dumps({**message, "id": message_id}))
        async with asyncio.timeout(timeout):
            return await future

    def luma(self) -> np.ndarray:
        """The last frame's Y plane (H x W)."""
        assert self.last_frame is not None
        return self.last_frame.to_ndarray(format="gray")

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        await self.pc.close()

    def _track(self, track: Any) -> None:
        if track.kind == "video":
            self._reader = asyncio.ensure_future(self._read(track))

    async def _read(self, track: Any) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            self.frames += 1
            self.last_frame = frame
            if self._on_frame is not None:
                self._on_frame(frame)

    def _message(self, raw: str | bytes) -> None:
        message = json.loads(raw)
        future = self._acks.pop(message.get("id"), None) if message.get("type") == "ack" else None
        if future is not None and not future.done():
            future.set_result(message)
        else:
            self.messages.append(message)


async def watch_once(url: str, key: str, path: str, *, timeout: float) -> tuple[float | None, dict[str, Any]]:
    """One viewer on ``path`` of the API at ``url``, closed again: the seconds from connecting to its
    first decoded frame (None when none comes within ``timeout``) and its hello message."""
    client = LiveClient()
    try:
        async with httpx.AsyncClient(
            base_url=url, headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as http:
            started = time.monotonic()
            (await client.connect(http, path)).raise_for_status()
            try:
                await client.wait_frames(1, timeout=timeout)
            except TimeoutError:
                return None, await client.wait_message("hello")
            first_frame_s = time.monotonic() - started
            return first_frame_s, await client.wait_message("hello")
    finally:
        await client.close()
