"""The scrcpy capture: scrcpy's server on the phone streams its screen's H.264, read as access units.

The other capture kind beside ``capture.py`` (``screenrecord``), with the same face to the stream
(``open``, ``units``, ``close``, ``damaged``) and one more: ``request_keyframe()``. The host pushes the
server jar (``webrtc.scrcpy_server_jar``) on every open, starts it through adb's ``exec:`` with
``tunnel_forward=true`` so the phone listens on its abstract socket, and opens that socket through the
adb server twice (``localabstract:NAME``: what ``adb forward`` does per connection, without a TCP
port): the video socket, then the control socket. docs/scrcpy.md has the byte layouts of the two
pinned server versions (1.24 and 3.3.4). Nothing is decoded: each media packet is one picture in
Annex B, and a config packet (SPS/PPS) is put in front of the picture after it.

Unlike screenrecord the server has no time limit, and a keyframe is asked of it rather than obtained
by starting over: 3.x has a reset-video control message (the server restarts its encoder, which
begins with SPS/PPS and an IDR). 1.24 has no such message: ``request_keyframe()`` answers False and
the stream falls back to restarting the capture, as for screenrecord.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
import struct
from collections.abc import AsyncIterator, Mapping
from typing import Any

from device_pool.driver import AdbDevice, adb_errors
from device_pool.driver.errors import ServerRefused
from device_pool.driver.wire import AdbConnection
from device_pool.errors import CommandFailed, DeviceOffline
from orchestrator.live.capture import Capture
from orchestrator.live.geometry import VideoGeometry
from orchestrator.live.h264 import AccessUnit
from orchestrator.live.stream import CaptureFactory, CaptureLike
from orchestrator.settings import WebRtcSettings

logger = logging.getLogger(__name__)

__all__ = ["DEVICE_JAR", "VERSIONS", "ScrcpyCapture", "capture_kind", "server_command"]

DEVICE_JAR = "/data/local/tmp/scrcpy-server.jar"
VERSIONS = ("1.24", "3.3.4")
CODEC_H264 = 0x68323634
FLAG_CONFIG = 1 << 63
FLAG_KEY_FRAME = 1 << 62
PTS_MASK = (1 << 62) - 1
MSG_RESET_VIDEO = b"\x11"  # 3.x control message 17, no payload
_HEADER = struct.Struct(">QI")
_CONNECT_TRIES_S = 0.05  # between tries to reach the server's socket while it starts
_MAX_PACKET = 16 * 1024 * 1024
_OUTPUT_KEPT = 4096


def server_command(version: str, *, scid: int, max_size: int, bit_rate: int, jar: str = DEVICE_JAR) -> str:
    """The shell command that starts the server in the dialect of ``version``."""
    head = f"CLASSPATH={jar} app_process / com.genymobile.scrcpy.Server {version}"
    if version == "1.24":
        opts = (
            f"tunnel_forward=true control=true max_size={max_size} bit_rate={bit_rate} send_dummy_byte=true "
            "clipboard_autosync=false"
        )
    else:
        opts = (
            f"scid={scid:08x} tunnel_forward=true audio=false control=true video_codec=h264 "
            f"max_size={max_size} video_bit_rate={bit_rate} clipboard_autosync=false cleanup=false"
        )
    return f"{head} {opts} log_level=info"


def capture_kind(settings: WebRtcSettings, provider: str, labels: Mapping[str, Any]) -> str:
    """``"scrcpy"`` or ``"screenrecord"`` for one phone: its ``capture`` label, else ``webrtc.capture``;
    ``auto`` is scrcpy for every provider but the virtual phone (``sim``) once a jar is configured.
    Without a jar it is always screenrecord (a label or setting asking for scrcpy is logged)."""
    label = labels.get("capture")
    asked = label if label in ("screenrecord", "scrcpy") else settings.capture
    if settings.scrcpy_server_jar is None:
        if asked == "scrcpy":
            logger.warning("scrcpy capture asked for without webrtc.scrcpy_server_jar: using screenrecord")
        return "screenrecord"
    if asked == "auto":
        return "screenrecord" if provider == "sim" else "scrcpy"
    return str(asked)


async def capture_factory(
    web: WebRtcSettings, serial: str, provider: str, labels: Mapping[str, Any], width: int, height: int, *,
    adb_host: str, adb_port: int, max_width: int, bit_rate: int,
) -> tuple[VideoGeometry, CaptureFactory]:
    """The phone's capture, as ``capture_kind`` picks it, for the live view and the recorder alike
    (each with its own ``max_width`` and ``bit_rate``): the video's geometry and how to start one.
    Raises ``OSError`` when the scrcpy jar cannot be read."""
    if capture_kind(web, provider, labels) == "scrcpy":
        assert web.scrcpy_server_jar is not None
        jar = await asyncio.to_thread(web.scrcpy_server_jar.read_bytes)
        geometry = VideoGeometry.for_scrcpy(width, height, max_width)

        def scrcpy() -> CaptureLike:
            return ScrcpyCapture(
                serial, geometry, adb_host=adb_host, adb_port=adb_port, bit_rate=bit_rate,
                version=web.scrcpy_server_version, jar=jar,
            )  # fmt: skip

        return geometry, scrcpy
    geometry = VideoGeometry.for_screen(width, height, max_width)

    def screenrecord() -> CaptureLike:
        return Capture(
            serial, geometry, adb_host=adb_host, adb_port=adb_port, bit_rate=bit_rate,
            time_limit_s=web.record_time_limit_s, flush_s=web.nal_flush_ms / 1000,
        )  # fmt: skip

    return geometry, screenrecord


class ScrcpyCapture:
    def __init__(
        self, serial: str, geometry: VideoGeometry, *, adb_host: str, adb_port: int, bit_rate: int, version: str,
        jar: bytes | None = None,
    ) -> None:  # fmt: skip
        if version not in VERSIONS:
            raise ValueError(f"scrcpy server {version} is not one this host speaks ({', '.join(VERSIONS)})")
        self.serial = serial
        self.version = version
        self.geometry = geometry
        self.scid = secrets.randbits(31)
        self.socket_name = "scrcpy" if version == "1.24" else f"scrcpy_{self.scid:08x}"
        self.command = server_command(version, scid=self.scid, max_size=max(geometry.video), bit_rate=bit_rate)
        self._adb = (adb_host, adb_port)
        self._jar = jar  # pushed on every open (a reset phone has lost it); None: already there
        self._server: AdbConnection | None = None
        self._video: AdbConnection | None = None
        self._control: AdbConnection | None = None
        self.device_name = ""
        self.video_size: tuple[int, int] | None = None
        self.damaged = False  # never set: the server's packets are framed, nothing is lost in between
        self.resets = 0  # reset-video messages sent
        self.keyframes = 0  # IDR pictures received
        self._closing = False
        self.server_output = b""
        self._server_ended = asyncio.Event()
        self._follower: asyncio.Task[None] | None = None

    async def _connect(self, service: str) -> AdbConnection:
        conn = await AdbConnection.open(*self._adb)
        try:
            await conn.request(f"host:transport:{self.serial}")
            await conn.request(service)
        except BaseException:
            conn.close()
            raise
        return conn

    async def open(self, timeout: float = 10.0) -> None:
        """Push the jar, start the server and connect to it; raises ``DeviceError`` (offline,
        refused, timed out; ``CommandFailed`` with what the server printed when it exits)."""
        if self._jar is not None:
            phone = AdbDevice(self.serial, adb_host=self._adb[0], adb_port=self._adb[1])
            await phone.push(self._jar, DEVICE_JAR, timeout=timeout)
        with adb_errors(self.serial, self.command, timeout=timeout):
            try:
                async with asyncio.timeout(timeout):
                    self._server = await self._connect(f"exec:{self.command}")
                    self._follower = asyncio.create_task(self._follow_server(self._server))
                    self._video = await self._socket(dummy=True)
                    self._control = await self._socket(dummy=False)
                    await self._read_meta(self._video)
            except BaseException:
                self.close()
                raise

    async def _socket(self, *, dummy: bool) -> AdbConnection:
        """One connection to the server's socket, retried while the server is still starting (the
        phone refuses the name until it listens). The first carries the dummy byte."""
        while True:
            if self._server_ended.is_set():
                text = self.server_output.decode("utf-8", "replace").strip()
                raise CommandFailed(
                    f"{self.serial}: the scrcpy server did not start" + (f": {text[:500]}" if text else ""),
                    device_id=self.serial, command=self.command, output=text,
                )  # fmt: skip
            conn, first = None, b"\x00"
            try:
                conn = await self._connect(f"localabstract:{self.socket_name}")
                if dummy:
                    first = await conn.read_exactly(1)
            except (ServerRefused, asyncio.IncompleteReadError, ConnectionError):
                if conn is not None:
                    conn.close()
                await asyncio.sleep(_CONNECT_TRIES_S)
                continue
            if first != b"\x00":
                conn.close()
                raise DeviceOffline(f"{self.serial}: scrcpy's first byte was {first!r}, not 0", device_id=self.serial)
            return conn

    async def _follow_server(self, conn: AdbConnection) -> None:
        """Keep what the server prints (its log; its error when it exits early)."""
        try:
            while chunk := await conn.read_some():
                self.server_output = (self.server_output + chunk)[-_OUTPUT_KEPT:]
        except OSError:
            pass
        finally:
            self._server_ended.set()

    async def _read_meta(self, conn: AdbConnection) -> None:
        name = await conn.read_exactly(64)
        self.device_name = name.split(b"\x00", 1)[0].decode("utf-8", "replace")
        if self.version == "1.24":
            self.video_size = struct.unpack(">HH", await conn.read_exactly(4))
            return
        codec, width, height = struct.unpack(">III", await conn.read_exactly(12))
        if codec != CODEC_H264:
            raise CommandFailed(
                f"{self.serial}: scrcpy streams codec {codec:#x}, not h264", device_id=self.serial, command=self.command
            )
        self.video_size = (width, height)

    def request_keyframe(self) -> bool:
        """Ask the server for a new IDR (3.x reset-video); False where the version has no way to."""
        if self.version == "1.24" or self._control is None or self._closing:
            return False
        self._control.write_nowait(MSG_RESET_VIDEO)
        self.resets += 1
        return True

    def close(self) -> None:
        """Close the sockets and the server's command; the server exits when its video socket closes."""
        self._closing = True
        if self._follower is not None:
            self._follower.cancel()
        for conn in (self._video, self._control, self._server):
            if conn is not None:
                conn.close()

    async def units(self) -> AsyncIterator[AccessUnit]:
        """Pictures as the server sends them, until it stops or ``close()``."""
        assert self._video is not None, "open() first"
        video = self._video
        config = b""
        try:
            while True:
                try:
                    flags, size = _HEADER.unpack(await video.read_exactly(_HEADER.size))
                    if size > _MAX_PACKET:
                        raise DeviceOffline(f"{self.serial}: scrcpy packet of {size} bytes", device_id=self.serial)
                    payload = await video.read_exactly(size)
                except (asyncio.IncompleteReadError, OSError):
                    if self._closing:
                        return
                    said = self.server_output.decode("utf-8", "replace").strip().splitlines()[-1:]
                    raise DeviceOffline(
                        f"{self.serial}: the scrcpy server stopped" + (f" ({said[0][:300]})" if said else ""),
                        device_id=self.serial, command=self.command,
                    ) from None  # fmt: skip
                if self._closing:
                    return
                if flags & FLAG_CONFIG:
                    config = payload  # SPS/PPS, for the next picture
                    continue
                keyframe = bool(flags & FLAG_KEY_FRAME)
                self.keyframes += keyframe
                data = config + payload if config else payload
                config = b""
                yield AccessUnit(data, keyframe)
        finally:
            self.close()
