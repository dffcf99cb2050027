"""``screenrecord --output-format=h264 … -``: the virtual phone encodes its own screen, as a phone does.

A real phone's ``screenrecord`` mirrors the display into a virtual display whose surface feeds the
hardware H.264 encoder (MediaCodec), and with ``--output-format=h264 -`` writes the raw Annex B
stream to stdout: ``adb exec-out screenrecord --output-format=h264 -`` is a live video of the screen
at the cost of the phone's encoder, not the host's CPU. This module gives the virtual phone the
same command with Android 13's options, limits and messages, so the live view (orchestrator/live)
uses one code path for the virtual phone, redroid and real phones:

- frames are produced only when the screen changes (SurfaceFlinger composes nothing for a still
  screen), checked at the display's 60 Hz;
- the first frame is an IDR with SPS/PPS, then an IDR every 10 s (screenrecord's
  ``KEY_I_FRAME_INTERVAL``); nothing else asks the encoder for one, so a host that needs a keyframe
  starts a new recording;
- ``--time-limit`` defaults to, and may not exceed, 180 s; ``--size`` letterboxes the screen into
  the video keeping its aspect; ``--bit-rate`` defaults to 20 Mbps;
- a secure window records black (the virtual display is not secure).

The encoder is x264 (ultrafast, zero latency, one thread) through PyAV: the phone's "hardware".
The recording runs as a streaming service — only a command line that is exactly one
``screenrecord`` writing to ``-`` streams; anything else goes to the ordinary shell, whose
``screenrecord`` (``shell/commands/record.py``) explains what the virtual phone supports.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from fractions import Fraction

from device_pool.android import screenrecord_projection
from device_pool.sim.command_line import lone_command
from device_pool.sim.phone import VirtualPhone
from device_pool.sim.stream import Stream

__all__ = ["RecordOptions", "parse_args", "serve", "streaming_argv"]

MAX_TIME_LIMIT_S = 180
MIN_BIT_RATE, MAX_BIT_RATE = 100_000, 200_000_000
DISPLAY_HZ = 60.0
IFRAME_INTERVAL_S = 10.0
FORMATS = ("mp4", "h264", "webm", "3gpp", "frames", "raw-frames")

USAGE = """Usage: screenrecord [options] <filename>

Android screenrecord v1.3.  Records the device's display to a .mp4 file.

Options:
--size WIDTHxHEIGHT
    Set the video size, e.g. "1280x720".  Default is the device's main
    display resolution (if supported), 1280x720 if not.  For best results,
    use a size supported by the AVC encoder.
--bit-rate RATE
    Set the video bit rate, in bits per second.  Value may be specified as
    bits or megabits, e.g. '4000000' is equivalent to '4M'.  Default 20Mbps.
--bugreport
    Add additional information, such as a timestamp overlay, that is helpful
    in videos captured to illustrate bugs.
--time-limit TIME
    Set the maximum recording time, in seconds.  Default / maximum is 180.
--display-id ID
    specify the physical display ID to record. Default is the primary display.
--verbose
    Display interesting information on stdout.
--help
    Show this message.

Recording continues until Ctrl-C is hit or the time limit is reached.
"""


@dataclass(frozen=True)
class RecordOptions:
    output: str
    output_format: str = "mp4"
    size: tuple[int, int] | None = None  # None: the display's size
    bit_rate: int = 20_000_000
    time_limit_s: int = MAX_TIME_LIMIT_S


class UsageError(Exception):
    """Bad arguments: ``message`` goes to stderr, ``code`` is the exit status (as Android's)."""

    def __init__(self, message: str, code: int = 2) -> None:
        super().__init__(message)
        self.message = message
        self.code = code


def _bit_rate(text: str) -> int:
    scale = 1
    if text[-1:] in ("M", "m"):
        text, scale = text[:-1], 1_000_000
    if not text.isdigit():
        raise UsageError(f"Invalid bit rate '{text}'")
    rate = int(text) * scale
    if not MIN_BIT_RATE <= rate <= MAX_BIT_RATE:
        raise UsageError(f"Bit rate {rate}bps outside acceptable range [{MIN_BIT_RATE},{MAX_BIT_RATE}]")
    return rate


def parse_args(argv: list[str]) -> RecordOptions:
    """Android's options (``--opt value`` or ``--opt=value``); raises UsageError."""
    fields: dict[str, object] = {}
    rest: list[str] = []
    args = iter(argv)
    for arg in args:
        if not arg.startswith("--") or arg == "-":
            rest.append(arg)
            continue
        name, eq, value = arg.partition("=")
        if name in ("--help", "--verbose", "--bugreport", "--rotate", "--persistent-surface"):
            if name == "--help":
                raise UsageError(USAGE, 0)
            continue
        if not eq:
            value = next(args, None)
            if value is None:
                raise UsageError(f"screenrecord: option '{name}' requires an argument")
        if name == "--size":
            w, x, h = value.partition("x")
            if not (x and w.isdigit() and h.isdigit()):
                raise UsageError(f"Invalid size '{value}', must be width x height")
            if int(w) == 0 or int(h) == 0:
                raise UsageError(f"Invalid size {w}x{h}, width and height may not be zero")
            fields["size"] = (int(w), int(h))
        elif name == "--bit-rate":
            fields["bit_rate"] = _bit_rate(value)
        elif name == "--time-limit":
            limit = int(value) if value.isdigit() else 0
            if not 1 <= limit <= MAX_TIME_LIMIT_S:
                raise UsageError(f"Time limit {value}s outside acceptable range [1,{MAX_TIME_LIMIT_S}]")
            fields["time_limit_s"] = limit
        elif name == "--output-format":
            if value not in FORMATS:
                raise UsageError(f"Unknown format '{value}'")
            fields["output_format"] = value
        elif name in ("--display-id", "--codec-name", "--bframes"):
            continue
        else:
            raise UsageError(f"screenrecord: unrecognized option '{name}'\n{USAGE}")
    if len(rest) != 1:
        raise UsageError("Must specify output file (see --help).")
    return RecordOptions(output=rest[0], **fields)  # type: ignore[arg-type]


def streaming_argv(command: str) -> list[str] | None:
    """The arguments when ``command`` is one ``screenrecord`` writing to stdout, else None."""
    args = lone_command(command, "screenrecord")
    return args if args and args[-1] == "-" else None


class Recorder:
    """The encoder side, called on a worker thread: ``poll`` encodes the screen if it changed."""

    def __init__(self, phone: VirtualPhone, options: RecordOptions, clock: Callable[[], float] = time.monotonic):
        import av  # the phone's "hardware encoder"; imported only by phones that record
        from av.video.reformatter import VideoReformatter

        self._av = av
        self.phone = phone
        self.clock = clock
        display = (phone.config.width, phone.config.height)
        self.video = options.size or display
        self.content = screenrecord_projection(display, self.video)  # as Android fits it
        codec = av.CodecContext.create("libx264", "w")
        codec.width, codec.height = self.video
        codec.pix_fmt = "yuv420p"
        codec.time_base = Fraction(1, 1_000_000)  # microseconds, as MediaCodec stamps buffers
        # The rate control's frame budget is bit rate / frame rate: without it x264 assumes one
        # frame per time-base tick and starves every frame (a grey picture).
        codec.framerate = Fraction(int(DISPLAY_HZ), 1)
        codec.bit_rate = options.bit_rate
        codec.thread_count = 1
        codec.options = {
            "preset": "ultrafast",
            "tune": "zerolatency",
            "forced-idr": "1",
            # Keyframes only when asked: the first frame, then every IFRAME_INTERVAL_S (below).
            "x264-params": "keyint=infinite:scenecut=0",
        }
        codec.open()
        self._codec = codec
        self._scaler = VideoReformatter()
        self._start = clock()
        self._last_seq: int | None = None
        self._last_idr: float | None = None

    def request_keyframe(self) -> None:
        """Encode the screen at the next poll as an IDR, changed or not (a scrcpy reset-video)."""
        self._last_seq = None
        self._last_idr = None

    def poll(self) -> bytes:
        """One Annex B access unit for a changed screen, or b"" when nothing changed."""
        frame = self.phone.frame()
        if frame.seq == self._last_seq:
            return b""
        self._last_seq = frame.seq
        av = self._av
        picture = av.VideoFrame.from_bytes(frame.rgba, frame.width, frame.height, format="rgba")
        ow, oh, ox, oy = self.content
        picture = self._scaler.reformat(picture, width=ow, height=oh, format="yuv420p", interpolation="BILINEAR")
        if (ow, oh) != self.video:
            picture = self._letterbox(picture, ox, oy)
        now = self.clock()
        picture.pts = int((now - self._start) * 1_000_000)
        if self._last_idr is None or now - self._last_idr >= IFRAME_INTERVAL_S:
            picture.pict_type = av.video.frame.PictureType.I
            self._last_idr = now
        return b"".join(bytes(p) for p in self._codec.encode(picture))

    def _letterbox(self, picture, x: int, y: int):  # type: ignore[no-untyped-def]
        import numpy as np

        vw, vh = self.video
        planes = picture.to_ndarray()  # yuv420p as one (h*3/2, w) array: Y, then U, then V
        ow, oh = picture.width, picture.height
        canvas = np.empty((vh * 3 // 2, vw), np.uint8)
        canvas[:vh] = 16  # limited-range black
        canvas[vh:] = 128
        canvas[y : y + oh, x : x + ow] = planes[:oh]
        u, v = planes[oh : oh + oh // 4].reshape(oh // 2, ow // 2), planes[oh + oh // 4 :].reshape(oh // 2, ow // 2)
        cu = canvas[vh : vh + vh // 4].reshape(vh // 2, vw // 2)
        cv = canvas[vh + vh // 4 :].reshape(vh // 2, vw // 2)
        cu[y // 2 : y // 2 + oh // 2, x // 2 : x // 2 + ow // 2] = u
        cv[y // 2 : y // 2 + oh // 2, x // 2 : x // 2 + ow // 2] = v
        return self._av.VideoFrame.from_ndarray(canvas, format="yuv420p")


async def serve(
    phone: VirtualPhone, executor: Executor | None, argv: list[str], v2: bool, stream: Stream
) -> None:
    """Record until the host closes the stream or the time limit passes (then exit 0, as Android).
    (``executor`` is the shell's; a recording uses a thread of its own for as long as it runs.)"""
    from device_pool.sim.adbd_services import ID_EXIT, ID_STDERR, ID_STDOUT, v2_packet

    async def out(kind: int, data: bytes) -> None:
        await stream.write(v2_packet(kind, data) if v2 else data)

    loop = asyncio.get_running_loop()
    drain = asyncio.create_task(stream.drain_input())
    code = 0
    try:
        try:
            options = parse_args(argv)
            if options.output_format != "h264":
                raise UsageError(
                    "screenrecord: the virtual phone writes to stdout only with --output-format=h264", 1
                )
            w, h = options.size or (phone.config.width, phone.config.height)
            if w % 2 or h % 2:
                raise UsageError(f"ERROR: unable to configure video/avc codec at {w}x{h} (err=-22)", 1)
        except UsageError as exc:
            await out(ID_STDOUT if exc.code == 0 else ID_STDERR, exc.message.encode())
            code = exc.code
            return
        # The encoder runs on a thread of its own, checking the screen at the display's rate and
        # waking the event loop only with a picture (a still screen costs a cheap check per tick).
        pictures: asyncio.Queue[bytes | BaseException | None] = asyncio.Queue()
        stop = threading.Event()

        def deliver(item: bytes | BaseException | None) -> None:
            loop.call_soon_threadsafe(pictures.put_nowait, item)

        def record() -> None:
            try:
                recorder = Recorder(phone, options)
                end = time.monotonic() + options.time_limit_s
                due = time.monotonic()
                while not stop.is_set() and time.monotonic() < end:
                    data = recorder.poll()
                    if data:
                        deliver(data)
                    due = max(due + 1 / DISPLAY_HZ, time.monotonic())
                    stop.wait(due - time.monotonic())
            except BaseException as exc:  # reported on the stream's side, then the recording ends
                deliver(exc)
            finally:
                deliver(None)

        drain.add_done_callback(lambda _: pictures.put_nowait(None))  # the host closed the stream
        thread = threading.Thread(target=record, name="sim-screenrecord", daemon=True)
        counts = phone.recordings
        counts["running"] += 1
        counts["started"] += 1
        counts["peak"] = max(counts["peak"], counts["running"])
        try:
            thread.start()
            while (item := await pictures.get()) is not None:
                if isinstance(item, BaseException):
                    raise item
                await out(ID_STDOUT, item)
        finally:
            # Over as soon as the host's end is gone: a host restarting for a keyframe closes the old
            # recording before it opens the next, so in its eyes they never overlap.
            counts["running"] -= 1
            stop.set()
            await asyncio.to_thread(thread.join)
    finally:
        drain.cancel()
        if v2 and not stream.closed:
            await stream.write(v2_packet(ID_EXIT, bytes([code & 0xFF])))
