"""A phone's video as a file: the capture's H.264 pictures muxed into fragmented MP4, never re-encoded.

The recording of a task or a session (docs/recordings.md). Whoever holds the phone records it — the
worker for a task, the API process for a session — so nothing depends on a live viewer. The phone
encodes (``capture.py``'s screenrecord or ``scrcpy.py``); this module only stamps each picture with
the time it arrived and hands its bytes to PyAV's MP4 muxer: per picture a copy of its bytes, no
decoding and no encoding on the host.

The clock: ``clock0`` is the ``time.monotonic()`` at which the first picture arrived, and that
picture is at 0 in the file; ``offset_ms(t)`` puts any other moment of this process (a step's
screenshot) on the video's timeline. ``start()`` waits (briefly) for that first picture, so what
happens after it returns is in the video.

Fragmented MP4 (an empty ``moov``, then a ``moof``+``mdat`` at least every second): a worker that
dies mid-task leaves a file that plays up to its last fragment; ``stop()`` writes the last one and
the index, so the file is complete when it returns. A capture that ends by itself (screenrecord's
180 s limit) is started again at once, and one that fails is retried with backoff; the file goes
on — every new capture begins with SPS, PPS and an IDR picture of the same size.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from device_pool.driver import AdbDevice
from device_pool.errors import DeviceError
from orchestrator.encryption import Cipher, screenshot_cipher
from orchestrator.live.h264 import PPS, SPS, AccessUnit, nal_type
from orchestrator.live.scrcpy import capture_factory
from orchestrator.live.stream import CaptureFactory, CaptureLike, reopen
from orchestrator.settings import Settings

__all__ = ["RECORDING_NAME", "Recorder", "record", "recording_file"]

RECORDING_NAME = "recording.mp4"
_FOLDERS = {"task": "tasks", "session": "sessions"}  # tasks/<id>/ also holds the task's screenshots

logger = logging.getLogger(__name__)

_TIME_BASE = Fraction(1, 1000)  # milliseconds: what steps' offsets are given in
# fMP4: a fragment per keyframe, and at least one per second (phones send few keyframes).
_MOVFLAGS = "frag_keyframe+empty_moov+default_base_moof"
_FRAG_DURATION_US = "1000000"


class Recorder:
    """Records one phone into ``path`` from ``start()`` to ``stop()`` (one use)."""

    def __init__(
        self, path: Path, video_size: tuple[int, int], new_capture: CaptureFactory, *, cipher: Cipher | None = None
    ) -> None:
        self.path = path
        self.cipher = cipher  # seals the finished file (a tenant with redaction on)
        self.video_size = video_size
        self._new_capture = new_capture
        self._capture: CaptureLike | None = None
        self._task: asyncio.Task[None] | None = None
        self._first = asyncio.Event()
        self._container: Any = None
        self._stream: Any = None
        self._last_ms = -1
        self._pending: av.Packet | None = None
        self._stopped = False
        self.clock0: float | None = None  # time.monotonic() of the first picture (0 ms in the file)
        self.pictures = 0
        self.bytes = 0
        self.captures = 0
        self.last_error: str | None = None

    async def start(self, first_picture_timeout_s: float = 5.0) -> None:
        """Open the first capture (raises ``DeviceError``) and record in the background; returns
        once the first picture is in the file, or after ``first_picture_timeout_s`` (a still phone
        whose encoder sends nothing yet: the video then starts later than the run)."""
        capture = self._new_capture()
        await capture.open()
        self._task = asyncio.create_task(self._run(capture), name=f"recorder-{self.path.parent.name}")
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(first_picture_timeout_s):
                await self._first.wait()

    def offset_ms(self, at: float) -> int | None:
        """Where the moment ``at`` (``time.monotonic()``) is in the video; None before its first picture."""
        if self.clock0 is None:
            return None
        return max(0, round((at - self.clock0) * 1000))

    async def stop(self) -> bool:
        """End the capture and finish the file (the last fragment and the index written).
        Returns whether a file with at least one picture was written. Idempotent."""
        if self._stopped:
            return self._container is not None
        self._stopped = True
        if self._capture is not None:
            self._capture.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._container is None:
            return False
        assert self.clock0 is not None
        try:
            # The last picture lasts until now: the screen showed it until the recording ended.
            self._mux_pending(until_ms=max(round((time.monotonic() - self.clock0) * 1000), self._last_ms + 1))
            await asyncio.to_thread(self._finish)
        except Exception:  # a recording never fails the run it records (what was written stays)
            logger.exception("recording not finished", extra={"path": str(self.path)})
            return False
        logger.info(
            "recording written",
            extra={"path": str(self.path), "pictures": self.pictures, "bytes": self.bytes, "captures": self.captures},
        )
        return True

    def _finish(self) -> None:
        self._container.close()
        if self.cipher is not None:
            # Sealed whole (Fernet has no streaming form): read back, sealed, swapped in at once.
            sealed = self.path.with_suffix(".sealing")
            sealed.write_bytes(self.cipher.seal(self.path.read_bytes()))
            sealed.replace(self.path)

    # --- the capture loop ----------------------------------------------------------------------

    async def _run(self, capture: CaptureLike) -> None:
        try:
            await self._record(capture)
        except Exception:  # the muxer refused a picture, the disk is full…: the recording ends here
            logger.exception("recording stopped", extra={"path": str(self.path)})
            if self._capture is not None:
                self._capture.close()

    async def _record(self, capture: CaptureLike) -> None:
        failures = 0
        while not self._stopped:
            self._capture = capture
            self.captures += 1
            try:
                async for unit in capture.units():
                    failures = 0
                    self._write(unit)
            except DeviceError as exc:
                failures += 1
                self.last_error = str(exc)
                logger.warning("recording capture failed: %s", exc)
            finally:
                capture.close()
                self._capture = None
            opened, failures = await reopen(self._new_capture, failures, lambda: self._stopped, self._failed)
            if opened is None:
                return
            capture = opened

    def _failed(self, error: str) -> None:
        self.last_error = error

    def _write(self, unit: AccessUnit) -> None:
        now = time.monotonic()
        if self._container is None:
            if not unit.keyframe:
                return  # a file starts at a keyframe (a new capture sends one first)
            self._open(unit)
            self.clock0 = now
            self._first.set()
        assert self.clock0 is not None
        ms = max(round((now - self.clock0) * 1000), self._last_ms + 1)  # strictly increasing
        # A picture lasts until the next one: it is muxed once that is known (a still screen sends none).
        self._mux_pending(until_ms=ms)
        packet = av.Packet(unit.data)
        packet.pts = packet.dts = ms
        packet.time_base = _TIME_BASE
        packet.stream = self._stream
        if unit.keyframe:
            packet.is_keyframe = True
        self._pending = packet
        self._last_ms = ms
        self.pictures += 1
        self.bytes += len(unit.data)

    def _mux_pending(self, until_ms: int) -> None:
        if self._pending is not None:
            self._pending.duration = max(1, until_ms - self._last_ms)
            self._container.mux(self._pending)
            self._pending = None

    def _open(self, keyframe: AccessUnit) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        container = av.open(
            str(self.path), "w", format="mp4",
            options={"movflags": _MOVFLAGS, "frag_duration": _FRAG_DURATION_US},
        )  # fmt: skip
        stream = container.add_stream("h264")
        stream.width, stream.height = self.video_size
        stream.time_base = _TIME_BASE
        # The decoder's configuration (avcC) from the keyframe's SPS and PPS (h264.py puts them in front).
        stream.codec_context.extradata = _parameter_sets(keyframe.data)
        self._container, self._stream = container, stream


def _parameter_sets(data: bytes) -> bytes:
    """The SPS and PPS NAL units of an Annex B access unit, start codes kept."""
    kept = []
    for nal in data.split(b"\x00\x00\x00\x01"):
        if nal and nal_type(nal) in (SPS, PPS):
            kept.append(b"\x00\x00\x00\x01" + nal)
    return b"".join(kept)


def recording_file(data_dir: Path, kind: str, id: object) -> Path:
    """Where the recording of a task or session (``kind``) is kept: beside the task's screenshots,
    so the retention reaper and a tenant's deletion remove it with them."""
    return data_dir.expanduser() / _FOLDERS[kind] / str(id) / RECORDING_NAME


async def record(
    settings: Settings, kind: str, id: object, serial: str, *, redacted: bool, provider: str,
    labels: dict[str, Any] | None = None, adb_host: str, adb_port: int,
) -> Recorder | None:
    """A started recorder of the phone ``serial`` for the task or session ``id``, with the capture
    kind the live view would pick for it (``webrtc.capture``, its ``capture`` label); ``stop()`` it
    before the run's end is written. None when nothing is to be recorded — ``recording.enabled`` is
    off, or the tenant has redaction on (``redacted``) and no ``storage.encryption_key`` is set to
    seal it with — or the phone cannot be captured (logged: a recording never fails the run)."""
    rec = settings.recording
    if not rec.enabled:
        return None
    cipher = screenshot_cipher(settings) if redacted else None
    if redacted and cipher is None:
        logger.warning("not recorded: the tenant has redaction on and storage.encryption_key is not set")
        return None
    path = recording_file(settings.data_dir, kind, id)
    try:
        return await _start(settings, path, serial, provider, labels or {}, adb_host, adb_port, cipher)
    except (DeviceError, OSError) as exc:
        logger.warning("not recorded: the phone's video cannot be captured: %s", exc)
        return None


async def _start(
    settings: Settings, path: Path, serial: str, provider: str, labels: dict[str, Any],
    adb_host: str, adb_port: int, cipher: Cipher | None,
) -> Recorder:
    rec, web = settings.recording, settings.webrtc
    phone = AdbDevice(serial, adb_host=adb_host, adb_port=adb_port)
    await phone.connect(timeout=10)
    width, height = await phone.screen_size()
    geometry, new_capture = await capture_factory(
        web, serial, provider, labels, width, height, adb_host=adb_host, adb_port=adb_port,
        max_width=rec.max_width, bit_rate=rec.bit_rate,
    )  # fmt: skip
    recorder = Recorder(path, geometry.video, new_capture, cipher=cipher)
    await recorder.start(rec.first_picture_timeout_s)
    return recorder
