"""The phone's side: the virtual phone's ``screenrecord --output-format=h264 -`` through the real adb
server, read by the API's ``Capture`` (what a redroid or a real phone would be read by)."""

from __future__ import annotations

import asyncio
import time

import av
import pytest

from device_pool.errors import CommandFailed
from orchestrator.live.capture import Capture
from orchestrator.live.geometry import VideoGeometry
from orchestrator.live.h264 import AccessUnit
from tests.aio import run
from tests.conftest import AdbServer
from tests.orchestrator.live.conftest import ticking_phone
from tests.processes import SimPhones


def _capture(phones: SimPhones, adb: AdbServer, video: tuple[int, int], time_limit_s: int = 180) -> Capture:
    geometry = VideoGeometry((720, 1600), video, (video[0], video[1], 0, 0))
    return Capture(phones.serial(), geometry, adb_host="127.0.0.1", adb_port=adb.port, bit_rate=2_000_000,
                     time_limit_s=time_limit_s, flush_s=0.008)  # fmt: skip


async def _collect(capture: Capture, seconds: float, until_count: int | None = None) -> list[AccessUnit]:
    """The units within ``seconds``, or the first ``until_count`` of them if those come sooner."""
    units: list[AccessUnit] = []

    async def read() -> None:
        async for unit in capture.units():
            units.append(unit)
            if len(units) == until_count:
                return

    try:
        async with asyncio.timeout(seconds):
            await read()
    except TimeoutError:
        pass
    finally:
        capture.close()
    return units


def test_the_phone_sends_pictures_only_when_its_screen_changes(live_phone: SimPhones, adb_server: AdbServer) -> None:
    async def scenario() -> None:
        phone = await ticking_phone(live_phone.serial(), adb_server.port, hz=0)  # counter on, still
        still = _capture(live_phone, adb_server, (360, 800))
        await still.open()
        units = await _collect(still, 1.5)
        assert len(units) == 1 and units[0].keyframe  # the current screen, then nothing

        await phone.shell("phonefleet-sim frame-counter on --tick 20", check=True)
        moving = _capture(live_phone, adb_server, (360, 800))
        await moving.open()
        # While it changes, pictures keep coming (~20 a second; a busy machine only makes them slower).
        units = await _collect(moving, 30, until_count=15)
        assert units[0].keyframe and not any(u.keyframe for u in units[1:])
        assert len(units) == 15, len(units)
        decoder = av.CodecContext.create("h264", "r")
        frames = [f for u in units for f in decoder.decode(av.Packet(u.data))]
        assert len(frames) == len(units) and (frames[0].width, frames[0].height) == (360, 800)

    run(scenario())


def test_a_capture_ends_at_its_time_limit(live_phone: SimPhones, adb_server: AdbServer) -> None:
    async def scenario() -> None:
        await ticking_phone(live_phone.serial(), adb_server.port, hz=10)
        capture = _capture(live_phone, adb_server, (360, 800), time_limit_s=1)
        await capture.open()
        start = time.monotonic()

        async def read_all() -> list[AccessUnit]:
            return [u async for u in capture.units()]

        units = await asyncio.wait_for(read_all(), 30)  # ends by itself; the deadline only guards a hang
        assert time.monotonic() - start > 0.9  # not before its 1 s limit
        assert units and units[0].keyframe

    run(scenario())


def test_a_size_of_another_aspect_is_letterboxed(live_phone: SimPhones, adb_server: AdbServer) -> None:
    async def scenario() -> None:
        await ticking_phone(live_phone.serial(), adb_server.port, hz=0)
        capture = _capture(live_phone, adb_server, (360, 640))
        await capture.open()
        units = await _collect(capture, 1.0)
        frame = av.CodecContext.create("h264", "r").decode(av.Packet(units[0].data))[0]
        assert (frame.width, frame.height) == (360, 640)
        luma = frame.to_ndarray(format="gray")
        # 720x1600 into 360x640 keeps 9:20: 288x640 in the middle, black bars of 36 px each side.
        assert luma[:, :30].max() < 40 and luma[:, -30:].max() < 40
        assert luma[:, 60:300].mean() > 60

    run(scenario())


@pytest.mark.parametrize(
    ("arguments", "printed"),
    [
        ("--size 0x10", "Invalid size 0x10, width and height may not be zero"),
        ("--time-limit 500", "Time limit 500s outside acceptable range [1,180]"),
        ("--bit-rate 5", "Bit rate 5bps outside acceptable range"),
        ("--output-format=mp4", "writes to stdout only with --output-format=h264"),
        ("--size 361x800", "unable to configure video/avc codec at 361x800"),
    ],
)
def test_bad_arguments_print_androids_errors(
    live_phone: SimPhones, adb_server: AdbServer, arguments: str, printed: str
) -> None:
    async def scenario() -> None:
        phone = await ticking_phone(live_phone.serial(), adb_server.port, hz=0)
        out = await phone.shell(f"screenrecord --output-format=h264 {arguments} -")
        assert printed in out.output and out.exit_code != 0, out
        # Read as a capture, the same text becomes the error the stream reports.
        capture = _capture(live_phone, adb_server, (360, 800))
        capture.command = f"screenrecord --output-format=h264 {arguments} -"
        await capture.open()
        with pytest.raises(CommandFailed, match="sent no video") as failed:
            [u async for u in capture.units()]
        assert printed in failed.value.output

    run(scenario())


def test_screenrecord_help_and_file_output(live_phone: SimPhones, adb_server: AdbServer) -> None:
    async def scenario() -> None:
        phone = await ticking_phone(live_phone.serial(), adb_server.port, hz=0)
        helped = await phone.shell("screenrecord --help")
        assert helped.exit_code == 0 and "Usage: screenrecord [options] <filename>" in helped.stdout
        to_file = await phone.shell("screenrecord /sdcard/demo.mp4")
        assert to_file.exit_code == 1 and "only to stdout" in to_file.stderr
        missing = await phone.shell("screenrecord")
        assert missing.exit_code == 2 and "Must specify output file" in missing.stderr

    run(scenario())
