"""One phone's live video: one capture on the phone, its pictures fanned out to every viewer.

The phone encodes (``capture.py``); this object turns each picture into one ``av.Packet`` and
offers that same packet to every viewer's ``PacketTrack``, so ten viewers cost what one costs plus
ten packetisers. It also keeps the pictures since the last keyframe (the GOP), so a viewer that
joins while the screen is still — the common case — gets the current picture at once from memory,
without restarting anything.

Keyframes: a viewer that joins after a long GOP, loses pictures, or reports picture loss (RTCP
PLI/FIR) needs an IDR. A capture that can be asked for one (``request_keyframe()`` answering True:
scrcpy 3.x's reset video) is asked; otherwise (screenrecord, scrcpy 1.24) the stream ends the capture
and starts a new one, which begins with an IDR (either at most once per
``keyframe_min_interval_s``; on a restart the other viewers see the picture pause for as long as the
phone takes to restart). A capture that ends by itself (screenrecord's 180 s limit) is restarted at once; one that fails is retried with backoff
while viewers remain. ``close()`` ends it all.

Repeats: ``repeat_s`` after a picture, if no other came, the stream sends that picture again
(``repeat.py``: a skipped P picture, a few bytes), and so does a new viewer's track after the GOP it
was given. Receivers that complete a picture only when the next one arrives (aiortc) would otherwise
show nothing of a still phone's last picture — a new viewer of a still phone nothing at all.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from fractions import Fraction
from typing import Protocol

import av

from device_pool.errors import DeviceError
from orchestrator.live.geometry import VideoGeometry
from orchestrator.live.h264 import AccessUnit
from orchestrator.live.repeat import PictureRepeater
from orchestrator.live.track import PacketTrack

__all__ = ["PhoneStream"]

logger = logging.getLogger(__name__)

_TIME_BASE = Fraction(1, 90_000)  # RTP's video clock
_GOP_LIMIT = 90  # pictures kept for joiners; a longer GOP is cheaper to restart than to replay
_RETRY_S = (0.5, 1.0, 2.0, 5.0)


class CaptureLike(Protocol):
    """What the stream needs of a ``Capture`` (tests may hand it another source of pictures)."""

    damaged: bool

    async def open(self, timeout: float = 10.0) -> None: ...
    def units(self) -> AsyncIterator[AccessUnit]: ...
    def close(self) -> None: ...


CaptureFactory = Callable[[], CaptureLike]


async def reopen(
    new_capture: CaptureFactory, failures: int, stopped: Callable[[], bool], failed: Callable[[str], None]
) -> tuple[CaptureLike | None, int]:
    """The next capture, opened, after one ended (the live stream's and the recorder's loops):
    backing off by the failures so far, so a phone that cannot be captured is not hammered; each
    failure to open is told to ``failed``. None once ``stopped()``. Returns the failure count too."""
    while not stopped():
        if failures:
            await asyncio.sleep(_RETRY_S[min(failures, len(_RETRY_S)) - 1])
        capture = new_capture()
        try:
            await capture.open()
            return capture, failures
        except DeviceError as exc:
            failures += 1
            failed(str(exc))
    return None, failures


class PhoneStream:
    def __init__(
        self,
        device_id: object,
        geometry: VideoGeometry,
        new_capture: CaptureFactory,
        *,
        keyframe_min_interval_s: float = 1.0,
        repeat_s: float = 0.1,
    ) -> None:
        self.device_id = device_id
        self.geometry = geometry
        self._new_capture = new_capture
        self._min_interval = keyframe_min_interval_s
        self._repeat_s = repeat_s  # 0: never repeat
        self._repeater = PictureRepeater()
        self._repeat_handle: asyncio.TimerHandle | None = None
        self._tracks: set[PacketTrack] = set()
        self._gop: list[tuple[av.Packet, bool]] | None = None  # since the last keyframe, or unusable
        self._capture: CaptureLike | None = None
        self._task: asyncio.Task[None] | None = None
        self._restart_handle: asyncio.TimerHandle | None = None
        self._started_at = 0.0  # when the current capture opened (monotonic)
        self._fresh = True  # the current capture has not sent its first picture (an IDR) yet
        self._clock0 = time.monotonic()
        self._closed = False
        self.pictures = 0  # received from the phone
        self.captures = 0  # started, restarts included
        self.repeats = 0  # pictures sent again (to all viewers, or to one new viewer)
        self.repeat_bytes = 0
        self.last_error: str | None = None
        self.capture_kind = "screenrecord"  # or "scrcpy" (set by the hub, which chose the capture)
        self.keyframe_restarts = 0  # captures restarted for a keyframe
        self.keyframe_asks = 0  # keyframes asked of a running capture (scrcpy's reset-video)

    # --- lifecycle -----------------------------------------------------------------------------

    async def start(self, timeout: float = 10.0) -> None:
        """Open the first capture (raises ``DeviceError``), then keep one running in the background."""
        capture = self._new_capture()
        await capture.open(timeout)
        self._started_at = time.monotonic()
        self._task = asyncio.create_task(self._run(capture), name=f"live-stream-{self.device_id}")

    async def close(self) -> None:
        self._closed = True
        if self._restart_handle is not None:
            self._restart_handle.cancel()
        if self._repeat_handle is not None:
            self._repeat_handle.cancel()
        if self._capture is not None:
            self._capture.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        for track in list(self._tracks):
            track.stop()
        self._tracks.clear()

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def capture(self) -> CaptureLike | None:
        """The running capture on the phone (inside a relay's ``SharedCapture``: what it opened)."""
        return getattr(self._capture, "inner", self._capture)

    # --- viewers -------------------------------------------------------------------------------

    def new_track(self) -> PacketTrack:
        """A track for one more viewer: primed with the current GOP, or waiting for a keyframe."""
        track = PacketTrack(self.request_keyframe)
        self._tracks.add(track)
        track.on("ended", lambda: self._tracks.discard(track))
        if self._gop:
            for packet, keyframe in self._gop:
                track.offer(packet, keyframe)
            if self._repeat_s > 0:
                # Its last picture completes for every receiver only once another follows.
                asyncio.get_running_loop().call_later(self._repeat_s, self._repeat_to, track, self.pictures)
        else:
            self.request_keyframe()
        return track

    def replay(self) -> list[AccessUnit] | None:
        """The pictures since the last keyframe, for a joiner elsewhere (``relay.py``); None: none usable."""
        if not self._gop:
            return None
        return [AccessUnit(bytes(packet), keyframe) for packet, keyframe in self._gop]

    @property
    def viewers(self) -> int:
        return len(self._tracks)

    def request_keyframe(self) -> None:
        """Ask the capture for a fresh IDR (scrcpy 3.x: reset-video) or, where it cannot be asked,
        restart it; at most once per ``keyframe_min_interval_s`` (nothing to do while a new capture
        has not sent its first picture: that is an IDR)."""
        if self._closed or self._restart_handle is not None or self._fresh:
            return
        wait = self._started_at + self._min_interval - time.monotonic()
        loop = asyncio.get_running_loop()
        self._restart_handle = loop.call_later(max(0.0, wait), self._restart)

    def _restart(self) -> None:
        self._restart_handle = None
        ask = getattr(self._capture, "request_keyframe", None)
        if ask is not None and ask():
            self.keyframe_asks += 1
            self._started_at = time.monotonic()  # the interval counts from this ask
            return
        if self._capture is not None:
            self.keyframe_restarts += 1
            logger.debug("live capture restarted for a keyframe", extra={"device_id": str(self.device_id)})
            self._capture.close()  # _run sees the end and opens the next one at once

    # --- the capture loop --------------------------------------------------------------------

    async def _run(self, capture: CaptureLike) -> None:
        failures = 0
        while not self._closed:
            self._capture = capture
            self._started_at = time.monotonic()
            self._fresh = True
            self._gop = None
            self.captures += 1
            try:
                async for unit in capture.units():
                    failures = 0
                    self._publish(unit)
                    if capture.damaged:
                        capture.damaged = False
                        self.request_keyframe()
            except DeviceError as exc:
                failures += 1
                self.last_error = str(exc)
                logger.warning("live capture failed: %s", exc, extra={"device_id": str(self.device_id)})
            finally:
                capture.close()
                self._capture = None
            opened, failures = await reopen(self._new_capture, failures, lambda: self._closed, self._failed)
            if opened is None:
                return
            capture = opened

    def _failed(self, error: str) -> None:
        self.last_error = error

    def _packet(self, data: bytes) -> av.Packet:
        packet = av.Packet(data)
        packet.pts = packet.dts = int((time.monotonic() - self._clock0) * 90_000)
        packet.time_base = _TIME_BASE
        return packet

    def _repeated(self) -> tuple[av.Packet, bool] | None:
        repeated = self._repeater.repeat()
        if repeated is None:
            return None
        data, keyframe = repeated  # keyframe: the IDR itself, for streams repeat.py cannot skip in
        self.repeats += 1
        self.repeat_bytes += len(data)
        return self._packet(data), keyframe

    def _repeat_all(self) -> None:
        """``repeat_s`` after the last picture, none having followed: send it again to every viewer."""
        self._repeat_handle = None
        if self._closed or not self._tracks:
            return
        repeated = self._repeated()
        if repeated is not None:
            for track in list(self._tracks):
                track.offer(*repeated)

    def _repeat_to(self, track: PacketTrack, pictures: int) -> None:
        """A new viewer's GOP ends with the current picture: send it again to that viewer (unless a newer
        picture came meanwhile; its own repeat follows it)."""
        if self._closed or self.pictures != pictures or track not in self._tracks:
            return
        repeated = self._repeated()
        if repeated is not None:
            track.offer(*repeated)

    def _publish(self, unit: AccessUnit) -> None:
        packet = self._packet(unit.data)
        self._repeater.observe(unit.data, unit.keyframe)
        if self._repeat_s > 0:
            if self._repeat_handle is not None:
                self._repeat_handle.cancel()
            self._repeat_handle = asyncio.get_running_loop().call_later(self._repeat_s, self._repeat_all)
        self.pictures += 1
        self._fresh = False
        if unit.keyframe:
            self._gop = [(packet, True)]
        elif self._gop is not None:
            self._gop.append((packet, False))
            if len(self._gop) > _GOP_LIMIT:
                self._gop = None
        for track in list(self._tracks):
            track.offer(packet, unit.keyframe)
