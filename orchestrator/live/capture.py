"""One ``screenrecord`` run on a phone, read as H.264 access units through the adb server.

``adb exec-out screenrecord --output-format=h264 --size WxH --bit-rate N --time-limit S -`` makes
the phone encode its own screen (a real phone's hardware encoder; redroid's software one; the
virtual phone's x264) and stream raw H.264, one burst of bytes per changed frame. The host only cuts
the stream into pictures (``h264.py``): no decoding, no encoding, nothing per frame but bytes.

A capture ends by itself at its time limit (Android stops at 180 s), when the phone goes away, or
when ``close()`` is called — which is also how a new keyframe is obtained: Android's screenrecord
cannot be asked for one, but every new capture starts with SPS, PPS and an IDR picture.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

from device_pool.driver import adb_errors
from device_pool.driver.wire import AdbConnection
from device_pool.errors import CommandFailed
from orchestrator.live.geometry import VideoGeometry
from orchestrator.live.h264 import AccessUnit, AccessUnits, NalSplitter

__all__ = ["Capture"]

_READ = 256 * 1024
_TEXT_LIMIT = 4096  # bytes kept of a capture that printed text instead of video (an error)


class Capture:
    def __init__(
        self,
        serial: str,
        geometry: VideoGeometry,
        *,
        adb_host: str,
        adb_port: int,
        bit_rate: int,
        time_limit_s: int,
        flush_s: float,
    ) -> None:
        self.serial = serial
        self.flush_s = flush_s
        vw, vh = geometry.video
        self.command = (
            f"screenrecord --output-format=h264 --size {vw}x{vh} --bit-rate {bit_rate} "
            f"--time-limit {time_limit_s} -"
        )
        self._adb = (adb_host, adb_port)
        self._reader: asyncio.StreamReader | None = None
        self._writer: asyncio.StreamWriter | None = None
        self.damaged = False  # bytes were lost: the pictures until the next keyframe may be broken
        self._closing = False

    async def open(self, timeout: float = 10.0) -> None:
        """Start the capture; raises ``DeviceError`` (offline, refused, timed out)."""
        with adb_errors(self.serial, self.command, timeout=timeout):
            async with asyncio.timeout(timeout):
                reader, writer = await asyncio.open_connection(*self._adb)
                try:
                    conn = AdbConnection(reader, writer)
                    await conn.request(f"host:transport:{self.serial}")
                    await conn.request(f"exec:{self.command}")
                except BaseException:
                    writer.close()
                    raise
        self._reader, self._writer = reader, writer

    def close(self) -> None:
        """Stop reading; the phone's screenrecord ends when its stream closes. ``units()`` then
        ends quietly, without the pictures it was still collecting."""
        self._closing = True
        if self._writer is not None:
            self._writer.close()

    async def units(self) -> AsyncIterator[AccessUnit]:
        """Pictures as they come, until the capture ends. A capture that sends no video at
        all raises ``CommandFailed`` with what it printed (bad arguments, no encoder)."""
        assert self._reader is not None, "open() first"
        reader = self._reader
        splitter, units = NalSplitter(), AccessUnits()
        head = bytearray()
        got_video = False
        try:
            while True:
                try:
                    if splitter.pending or units.pending:
                        async with asyncio.timeout(self.flush_s):
                            chunk = await reader.read(_READ)
                    else:
                        chunk = await reader.read(_READ)
                except TimeoutError:
                    # The phone paused: the frame it was writing is complete.
                    for unit in self._flush(splitter, units):
                        got_video = True
                        yield unit
                    continue
                except OSError:
                    return
                if self._closing:
                    return
                if not chunk:
                    if got_video:
                        for unit in self._flush(splitter, units):
                            yield unit
                        return
                    text = head.decode("utf-8", "replace").strip()
                    raise CommandFailed(
                        f"{self.serial}: `{self.command}` sent no video"
                        + (f": {text[:500]}" if text else ""),
                        device_id=self.serial,
                        command=self.command,
                        output=text,
                    )
                if not got_video and len(head) < _TEXT_LIMIT:
                    head += chunk[: _TEXT_LIMIT - len(head)]
                for nal in splitter.feed(chunk):
                    unit = units.push(nal)
                    if unit is not None:
                        got_video = True
                        yield unit
                if splitter.damaged:
                    splitter.damaged = False
                    self.damaged = True
        finally:
            self.close()

    @staticmethod
    def _flush(splitter: NalSplitter, units: AccessUnits) -> list[AccessUnit]:
        done = []
        nal = splitter.flush()
        if nal is not None:
            unit = units.push(nal)
            if unit is not None:
                done.append(unit)
        unit = units.flush()
        if unit is not None:
            done.append(unit)
        return done
