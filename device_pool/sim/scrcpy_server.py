"""The scrcpy server's device side on the virtual phone: ``app_process … com.genymobile.scrcpy.Server``.

On a real phone the host pushes scrcpy's server jar and starts it with ``CLASSPATH=JAR app_process /
com.genymobile.scrcpy.Server VERSION key=value…``; the server listens on an abstract socket, streams
the screen's H.264 on the first connection and reads control messages on the second
(docs/scrcpy.md has the byte layouts). The virtual phone answers the same command line with this
module instead of a JVM: the jar must have been pushed (the path is checked, its bytes are not run),
the version must be one the host side speaks (``1.24`` or ``3.3.4``), and the pictures come from the
same x264 encoder as its ``screenrecord`` (``screenrecord.Recorder``), with no time limit.

Supported: ``tunnel_forward=true`` only (the phone listens; the reverse tunnel would need the phone
to dial the host), video only (3.x: ``audio=false``), ``control`` on or off, ``max_size``, the bit
rate, and the ``send_*`` switches. Of the control messages only reset-video (3.x) is acted on; the
live view sends input through adb, not through scrcpy.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading
import time
from concurrent.futures import Executor
from dataclasses import dataclass

from device_pool.android import scrcpy_video_size
from device_pool.sim import localsocket
from device_pool.sim.command_line import plain_argv
from device_pool.sim.phone import VirtualPhone
from device_pool.sim.screenrecord import DISPLAY_HZ, Recorder, RecordOptions
from device_pool.sim.stream import Stream

__all__ = ["ServerOptions", "parse_args", "serve", "server_argv"]

SERVER_CLASS = "com.genymobile.scrcpy.Server"
VERSIONS = ("1.24", "3.3.4")
CODEC_H264 = 0x68323634  # "h264"
FLAG_CONFIG = 1 << 63
FLAG_KEY_FRAME = 1 << 62
MSG_RESET_VIDEO = 17  # 3.x
_CONTROL_SIZES = {4: 1, 5: 0, 6: 0, 7: 0, 8: 1, 10: 1, 11: 0, 15: 0, 17: 0}  # fixed payloads (3.x)
_ACCEPT_TIMEOUT_S = 10.0


class ServerError(Exception):
    """What the real server would print before exiting with status 1."""


@dataclass(frozen=True)
class ServerOptions:
    version: str
    classpath: str
    scid: int = -1  # 3.x: the socket is scrcpy_%08x; -1 (or 1.24): plain "scrcpy"
    control: bool = True
    max_size: int = 0
    bit_rate: int = 8_000_000
    send_dummy_byte: bool = True
    send_device_meta: bool = True
    send_codec_meta: bool = True  # 3.x only
    send_frame_meta: bool = True

    @property
    def socket_name(self) -> str:
        return "scrcpy" if self.scid == -1 or self.version == "1.24" else f"scrcpy_{self.scid:08x}"


def server_argv(command: str) -> tuple[str, list[str]] | None:
    """(classpath, arguments after the class name) when ``command`` starts the scrcpy server."""
    argv = plain_argv(command)
    if argv is None or len(argv) < 4 or not argv[0].startswith("CLASSPATH="):
        return None
    if argv[1] not in ("app_process", "/system/bin/app_process"):
        return None
    rest = [a for a in argv[2:] if not a.startswith("--")]  # app_process's own options
    if len(rest) < 2 or rest[1] != SERVER_CLASS:
        return None
    return argv[0][len("CLASSPATH=") :], rest[2:]


def _bool(key: str, value: str) -> bool:
    if value not in ("true", "false"):
        raise ServerError(f"Invalid boolean for {key}: {value}")
    return value == "true"


def parse_args(classpath: str, args: list[str]) -> ServerOptions:
    """The server's ``key=value`` arguments; raises ServerError as the server refuses them."""
    if not args:
        raise ServerError("Missing client version")
    version = args[0]
    if version not in VERSIONS:
        raise ServerError(
            f"The server version ({VERSIONS[-1]}) does not match the client ({version}); "
            f"the virtual phone serves {' and '.join(VERSIONS)}"
        )
    fields: dict[str, object] = {}
    v3 = version != "1.24"
    for arg in args[1:]:
        key, eq, value = arg.partition("=")
        if not eq:
            raise ServerError(f"Invalid key=value pair: \"{arg}\"")
        if key == "scid" and v3:
            fields["scid"] = int(value, 16)
        elif key == "tunnel_forward":
            if not _bool(key, value):
                raise ServerError("the virtual phone cannot dial the host: use tunnel_forward=true")
        elif key == "audio" and v3:
            if _bool(key, value):
                raise ServerError("the virtual phone has no audio: pass audio=false")
        elif key == "video_codec" and v3 and value != "h264":
            raise ServerError(f"the virtual phone encodes h264 only, not {value}")
        elif key == "max_size":
            fields["max_size"] = int(value) & ~7
        elif key == ("video_bit_rate" if v3 else "bit_rate"):
            fields["bit_rate"] = int(value)
        elif key in ("control", "send_dummy_byte", "send_device_meta", "send_frame_meta") or (
            key == "send_codec_meta" and v3
        ):
            fields[key] = _bool(key, value)
        elif key == ("raw_stream" if v3 else "raw_video_stream") and _bool(key, value):
            fields.update(send_dummy_byte=False, send_device_meta=False, send_codec_meta=False,
                          send_frame_meta=False)  # fmt: skip
        # Every other option (log_level, cleanup, power_on, stay_awake, …) changes nothing here.
    return ServerOptions(version=version, classpath=classpath, **fields)  # type: ignore[arg-type]


def split_config(data: bytes) -> tuple[bytes, bytes, bool]:
    """An access unit → (SPS/PPS NAL units, the rest, contains an IDR), as MediaCodec hands them out."""
    config, media, key = bytearray(), bytearray(), False
    starts = []
    i = data.find(b"\x00\x00\x01")
    while i != -1:
        starts.append(i)
        i = data.find(b"\x00\x00\x01", i + 3)
    for n, s in enumerate(starts):
        end = starts[n + 1] if n + 1 < len(starts) else len(data)
        if n + 1 < len(starts) and data[end - 1 : end] == b"\x00":
            end -= 1  # a 4-byte start code belongs to the next unit
        nal_type = data[s + 3] & 0x1F if s + 3 < len(data) else 0
        unit = b"\x00\x00\x00\x01" + data[s + 3 : end]
        if nal_type in (7, 8):
            config += unit
        else:
            media += unit
            key = key or nal_type == 5
    return bytes(config), bytes(media), key


async def serve(
    phone: VirtualPhone, executor: Executor | None, classpath: str, args: list[str], v2: bool, stream: Stream
) -> None:
    """Run the server for as long as the host keeps its video socket (and this command) open. The
    command's output is the server's log (shell v2: framed, with the exit status 1 after an error)."""
    from device_pool.sim.adbd_services import ID_EXIT, ID_STDOUT, v2_packet

    async def out(text: str) -> None:
        data = text.encode()
        await stream.write(v2_packet(ID_STDOUT, data) if v2 else data)

    drain = asyncio.create_task(stream.drain_input())
    code = 0
    try:
        try:
            options = parse_args(classpath, args)
            if not phone.host_path(classpath).is_file():
                raise ServerError(f"java.lang.ClassNotFoundException: {SERVER_CLASS} ({classpath} not found)")
            listener = localsocket.listen(phone, options.socket_name)
        except (ServerError, ValueError, OSError) as exc:
            code = 1
            await out(f"[server] ERROR: {exc}\n")
            return
        await out(f"[server] INFO: Device: [sim] virtual phone (scrcpy {options.version})\n")
        try:
            await _run(phone, options, listener, drain)
        except ServerError as exc:
            code = 1
            if not stream.closed:
                await out(f"[server] ERROR: {exc}\n")
    finally:
        drain.cancel()
        if v2 and not stream.closed:
            await stream.write(v2_packet(ID_EXIT, bytes([code])))


async def _run(phone: VirtualPhone, options: ServerOptions, listener: localsocket.Listener,
               ended: asyncio.Task[None]) -> None:  # fmt: skip
    held: list[asyncio.Future[None]] = []
    try:
        try:
            async with asyncio.timeout(_ACCEPT_TIMEOUT_S):
                video, done = await listener.accept()
                held.append(done)
                if options.send_dummy_byte:  # at once: the host waits for it before connecting again
                    await video.write(b"\x00")
                control = None
                if options.control:
                    control, done = await listener.accept()
                    held.append(done)
        except TimeoutError:
            raise ServerError("no client connected") from None
        finally:
            listener.close()
        display = (phone.config.width, phone.config.height)
        size = scrcpy_video_size(display, options.max_size)
        head = b""
        if options.send_device_meta:
            name = phone.props.get("ro.product.model", "sim").encode()[:63].ljust(64, b"\x00")
            head += name + (struct.pack(">HH", *size) if options.version == "1.24" else b"")
        if options.version != "1.24" and options.send_codec_meta:
            head += struct.pack(">III", CODEC_H264, *size)
        await video.write(head)
        recorder_options = RecordOptions(output="-", output_format="h264", size=size, bit_rate=options.bit_rate)
        await _stream_video(phone, options, recorder_options, video, control, ended)
    finally:
        for done in held:
            if not done.done():
                done.set_result(None)


async def _stream_video(phone: VirtualPhone, options: ServerOptions, record: RecordOptions, video: Stream,
                        control: Stream | None, ended: asyncio.Task[None]) -> None:  # fmt: skip
    loop = asyncio.get_running_loop()
    pictures: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()
    stop, reset = threading.Event(), threading.Event()

    def deliver(item: bytes | BaseException | None) -> None:
        loop.call_soon_threadsafe(pictures.put_nowait, item)

    def encode() -> None:  # the encoder thread: as screenrecord's, without its time limit
        try:
            recorder = Recorder(phone, record)
            due = time.monotonic()
            while not stop.is_set():
                if reset.is_set():
                    reset.clear()
                    recorder.request_keyframe()
                data = recorder.poll()
                if data:
                    deliver(data)
                due = max(due + 1 / DISPLAY_HZ, time.monotonic())
                stop.wait(due - time.monotonic())
        except BaseException as exc:
            deliver(exc)
        finally:
            deliver(None)

    async def read_control() -> None:
        assert control is not None
        buf = bytearray()
        while (chunk := await control.read()) is not None:
            buf += chunk
            while buf:
                kind = buf[0]
                if kind == MSG_RESET_VIDEO and options.version != "1.24":
                    reset.set()
                if kind not in _CONTROL_SIZES or options.version == "1.24":
                    return  # a message the virtual phone does not parse: stop reading (not acked)
                need = 1 + _CONTROL_SIZES[kind]
                if len(buf) < need:
                    break
                del buf[:need]

    watchers = [ended, asyncio.create_task(video.drain_input())]
    for watcher in watchers:  # the host closed the command or the video socket: stop
        watcher.add_done_callback(lambda _: pictures.put_nowait(None))
    if control is not None:
        watchers.append(asyncio.create_task(read_control()))
    thread = threading.Thread(target=encode, name="sim-scrcpy", daemon=True)
    thread.start()
    origin: float | None = None
    try:
        while (item := await pictures.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            config, media, key = split_config(item)
            now = time.monotonic()
            origin = now if origin is None else origin
            pts = int((now - origin) * 1_000_000)
            out = bytearray()
            for payload, flags in ((config, FLAG_CONFIG), (media, pts | (FLAG_KEY_FRAME if key else 0))):
                if not payload:
                    continue
                if options.send_frame_meta:
                    out += struct.pack(">QI", flags, len(payload))
                out += payload
            await video.write(bytes(out))
    finally:
        stop.set()
        await asyncio.to_thread(thread.join)
        for watcher in watchers[1:]:
            watcher.cancel()
        with contextlib.suppress(Exception):
            await video.close()
        if control is not None:
            with contextlib.suppress(Exception):
                await control.close()
