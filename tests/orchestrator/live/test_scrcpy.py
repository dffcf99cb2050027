"""The scrcpy capture against the virtual phone's scrcpy server, through the real adb server."""

from __future__ import annotations

import asyncio

import av
import pytest

from device_pool.driver import AdbDevice
from device_pool.errors import CommandFailed
from orchestrator.live.geometry import VideoGeometry
from orchestrator.live.h264 import AccessUnit
from orchestrator.live.scrcpy import DEVICE_JAR, ScrcpyCapture
from tests.aio import run
from tests.conftest import AdbServer
from tests.orchestrator.live.conftest import PHONE, ticking_phone
from tests.processes import SimPhones

# The virtual phone checks that the jar was pushed but runs its own server: any bytes will do.
JAR = b"PK\x05\x06" + bytes(18)


def _capture(phones: SimPhones, adb: AdbServer, version: str) -> ScrcpyCapture:
    geometry = VideoGeometry.for_scrcpy(*PHONE, 360)
    return ScrcpyCapture(phones.serial(), geometry, adb_host="127.0.0.1", adb_port=adb.port, bit_rate=2_000_000,
                         version=version)  # fmt: skip


async def _units(capture: ScrcpyCapture, count: int, seconds: float = 30) -> list[AccessUnit]:
    units: list[AccessUnit] = []
    async with asyncio.timeout(seconds):
        async for unit in capture.units():
            units.append(unit)
            if len(units) == count:
                break
    return units


@pytest.mark.parametrize("version", ["1.24", "3.3.4"])
def test_the_server_streams_decodable_h264_with_its_meta(
    live_phone: SimPhones, adb_server: AdbServer, version: str
) -> None:
    async def scenario() -> None:
        phone = await ticking_phone(live_phone.serial(), adb_server.port, hz=20)
        await phone.push(JAR, DEVICE_JAR)
        capture = _capture(live_phone, adb_server, version)
        await capture.open()
        try:
            assert capture.video_size == capture.geometry.video == (360, 800)
            assert capture.device_name  # the 64-byte name field, NUL-stripped
            units = await _units(capture, 10)
        finally:
            capture.close()
        # The config packet (SPS/PPS) is put in front of the first picture, an IDR.
        assert units[0].keyframe and units[0].data.startswith(b"\x00\x00\x00\x01\x67")
        assert not any(u.keyframe for u in units[1:])
        decoder = av.CodecContext.create("h264", "r")
        frames = [f for u in units for f in decoder.decode(av.Packet(u.data))]
        assert len(frames) == len(units) and (frames[0].width, frames[0].height) == (360, 800)

    run(scenario())


def test_reset_video_brings_a_new_keyframe_of_a_still_screen(live_phone: SimPhones, adb_server: AdbServer) -> None:
    async def scenario() -> None:
        phone = await ticking_phone(live_phone.serial(), adb_server.port, hz=0)  # still
        await phone.push(JAR, DEVICE_JAR)
        capture = _capture(live_phone, adb_server, "3.3.4")
        await capture.open()
        try:
            units = capture.units()
            first = await asyncio.wait_for(anext(units), 30)
            assert first.keyframe
            assert capture.request_keyframe() and capture.resets == 1
            again = await asyncio.wait_for(anext(units), 30)  # a still screen sends nothing else
            assert again.keyframe and again.data.startswith(b"\x00\x00\x00\x01\x67")
        finally:
            capture.close()

    run(scenario())


def test_1_24_has_no_reset_video_and_a_missing_jar_is_reported(live_phone: SimPhones, adb_server: AdbServer) -> None:
    async def scenario() -> None:
        phone = AdbDevice(live_phone.serial(), adb_port=adb_server.port)
        await phone.connect(timeout=30)
        await phone.shell(f"rm -f {DEVICE_JAR}")
        capture = _capture(live_phone, adb_server, "1.24")
        with pytest.raises(CommandFailed, match="ClassNotFoundException"):
            await capture.open()
        await phone.push(JAR, DEVICE_JAR)
        capture = _capture(live_phone, adb_server, "1.24")
        await capture.open()
        try:
            assert not capture.request_keyframe()  # the stream restarts the capture instead
        finally:
            capture.close()

    run(scenario())
