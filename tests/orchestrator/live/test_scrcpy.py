"""The scrcpy capture against the virtual phone's scrcpy server, through the real adb server."""

from __future__ import annotations

import asyncio
import socket
import struct
import subprocess
import time
from pathlib import Path

import av
import httpx
import pytest

from device_pool.driver import AdbDevice
from device_pool.driver.wire import AdbConnection
from device_pool.errors import CommandFailed
from device_pool.sim import counter
from orchestrator.api import create_app
from orchestrator.live import LiveHub
from orchestrator.live.geometry import VideoGeometry
from orchestrator.live.h264 import AccessUnit
from orchestrator.live.scrcpy import DEVICE_JAR, ScrcpyCapture, server_command
from orchestrator.queue import TaskQueue
from orchestrator.settings import Settings
from tests.aio import run
from tests.conftest import REDIS_URL, AdbServer
from tests.orchestrator.conftest import StartApi
from tests.orchestrator.live.conftest import (
    PHONE,
    VIDEO,
    lease_phone,
    live_settings,
    serve_here,
    ticking_phone,
)
from tests.orchestrator.live.peer import LiveClient
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
        # Through `adb shell` (v2, as scrcpy's own client starts it): a version the phone does not
        # serve is refused with the server's mismatch message and exit status 1.
        out = await phone.shell(f"CLASSPATH={DEVICE_JAR} app_process / com.genymobile.scrcpy.Server 2.7")
        assert out.exit_code == 1 and "does not match the client (2.7)" in out.stdout
        capture = _capture(live_phone, adb_server, "1.24")
        await capture.open()
        try:
            assert not capture.request_keyframe()  # the stream restarts the capture instead
        finally:
            capture.close()

    run(scenario())


@pytest.mark.parametrize("version", ["3.3.4", "1.24"])
def test_the_live_view_over_scrcpy_asks_for_keyframes_and_never_restarts(
    tmp_path: Path, migrated_pg_url: str, adb_server: AdbServer, live_phone: SimPhones, redis_prefix: str,
    start_api: StartApi, version: str,
) -> None:  # fmt: skip
    """3.3.4: a viewer's picture loss becomes reset video on the running capture. 1.24 has no such
    message: the stream restarts the server for the keyframe (once), as it does screenrecord."""
    caller = start_api(migrated_pg_url).caller()
    jar = tmp_path / "scrcpy-server.jar"
    jar.write_bytes(JAR)
    # screenrecord would stop after 1 s here; the scrcpy server has no limit.
    webrtc = live_settings(adb_server.port, capture="scrcpy", scrcpy_server_jar=str(jar),
                           scrcpy_server_version=version, record_time_limit_s=1)  # fmt: skip
    settings = Settings(data_dir=tmp_path / "data", database_url=migrated_pg_url, redis_url=REDIS_URL, webrtc=webrtc)

    async def scenario() -> None:
        phone = await ticking_phone(live_phone.serial(), adb_server.port, hz=0)  # a still screen
        queue = TaskQueue.from_settings(settings, key_prefix=redis_prefix)
        app = create_app(settings, queue=queue)
        seqs: list[int] = []

        def stamp(frame) -> None:  # type: ignore[no-untyped-def]
            read = counter.read(frame.to_ndarray(format="gray"))
            if read is not None:
                seqs.append(read.seq)

        client = LiveClient(on_frame=stamp)
        try:
            async with serve_here(app) as url, lease_phone(
                migrated_pg_url, live_phone.serial(), caller.tenant_id
            ) as leased, httpx.AsyncClient(base_url=url, headers={"Authorization": f"Bearer {caller.key}"},
                                           timeout=30) as http:  # fmt: skip
                hub: LiveHub = app.state.live
                r = await client.connect(http, f"/api/v1/devices/{leased.device_id}/webrtc")
                assert r.status_code == 200, r.text
                assert r.json()["video"] == {"width": VIDEO[0], "height": VIDEO[1]}
                stream = hub.stream(leased.device_id)
                assert stream is not None and stream.capture_kind == "scrcpy"
                await client.wait_frames(1)
                capture = stream.capture
                assert isinstance(capture, ScrcpyCapture) and capture.keyframes == 1

                # Picture loss (RTCP PLI): 3.3.4 gets a reset-video message and the server's encoder
                # starts over with SPS/PPS and an IDR, on the same connection; 1.24 a new server.
                receiver = client.pc.getReceivers()[0]
                await receiver._send_rtcp_pli(receiver.getSynchronizationSources()[0].source)
                async with asyncio.timeout(15):  # a keyframe after the ask
                    while not (capture.keyframes >= 2 or (stream.keyframe_restarts and stream.pictures >= 2)):
                        await asyncio.sleep(0.05)
                if version == "3.3.4":
                    assert capture.resets == 1 and stream.keyframe_asks == 1 and stream.keyframe_restarts == 0
                else:
                    assert stream.keyframe_asks == 0 and stream.keyframe_restarts == 1
                    async with asyncio.timeout(15):
                        while not isinstance(stream.capture, ScrcpyCapture) or stream.capture is capture:
                            await asyncio.sleep(0.05)
                    capture = stream.capture
                captures = stream.captures
                assert captures == (1 if version == "3.3.4" else 2)

                # Well past screenrecord's (here 1 s) limit: one capture, pictures all along.
                await phone.shell("phonefleet-sim frame-counter on --tick 20", check=True)
                start, seen = time.monotonic(), client.frames
                await client.wait_frames(seen + 40, timeout=30)
                assert time.monotonic() - start > 1.5
                assert stream.captures == captures and stream.capture is capture
        finally:
            await client.close()
            queue.close()
        assert seqs == sorted(seqs) and seqs[-1] - seqs[0] >= 35

    run(scenario(), timeout=120)


def test_the_capture_kind_is_chosen_per_device(tmp_path: Path) -> None:
    from orchestrator.live.scrcpy import capture_kind
    from orchestrator.settings import WebRtcSettings

    jar = tmp_path / "server.jar"
    none, auto = WebRtcSettings(), WebRtcSettings(scrcpy_server_jar=jar)
    assert capture_kind(none, "redroid", {}) == "screenrecord"  # no jar: screenrecord everywhere
    assert capture_kind(none, "redroid", {"capture": "scrcpy"}) == "screenrecord"
    assert capture_kind(auto, "redroid", {}) == capture_kind(auto, "static_adb", {}) == "scrcpy"
    assert capture_kind(auto, "sim", {}) == "screenrecord"  # the virtual phone, unless asked
    assert capture_kind(auto, "sim", {"capture": "scrcpy"}) == "scrcpy"
    assert capture_kind(auto, "redroid", {"capture": "screenrecord"}) == "screenrecord"
    forced = WebRtcSettings(scrcpy_server_jar=jar, capture="scrcpy")
    assert capture_kind(forced, "sim", {}) == "scrcpy"
    assert capture_kind(forced, "sim", {"capture": "bogus"}) == "scrcpy"  # an unknown label is ignored


def test_adb_forward_reaches_the_server_as_scrcpys_own_client_does(
    live_phone: SimPhones, adb_server: AdbServer
) -> None:
    """``adb forward tcp:P localabstract:scrcpy`` (the real adb binary): each connection to P is one
    ``localabstract:`` stream to the phone, as the scrcpy desktop client uses it."""

    async def scenario() -> None:
        phone = await ticking_phone(live_phone.serial(), adb_server.port, hz=0)
        await phone.push(JAR, DEVICE_JAR)
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        server = await AdbConnection.open("127.0.0.1", adb_server.port)
        try:
            await server.request(f"host:transport:{live_phone.serial()}")
            await server.request("exec:" + server_command("1.24", scid=0, max_size=800, bit_rate=2_000_000))
            forward = [adb_server.binary, "-s", live_phone.serial(), "forward", f"tcp:{port}", "localabstract:scrcpy"]
            done = await asyncio.to_thread(subprocess.run, forward, env=adb_server.env(), capture_output=True, timeout=30)
            assert done.returncode == 0, done.stderr
            async with asyncio.timeout(30):
                while True:  # the server listens once it has started
                    video_r, video_w = await asyncio.open_connection("127.0.0.1", port)
                    try:
                        assert await video_r.readexactly(1) == b"\x00"
                        break
                    except asyncio.IncompleteReadError:
                        video_w.close()
                        await asyncio.sleep(0.05)
                _control = await asyncio.open_connection("127.0.0.1", port)
                meta = await video_r.readexactly(68)
                assert struct.unpack(">HH", meta[64:]) == (360, 800)
                flags, size = struct.unpack(">QI", await video_r.readexactly(12))
                assert flags == 1 << 63 and (await video_r.readexactly(size)).startswith(b"\x00\x00\x00\x01\x67")
                flags, size = struct.unpack(">QI", await video_r.readexactly(12))
                assert flags & (1 << 62)  # then the IDR
            video_w.close()
            _control[1].close()
        finally:
            server.close()

    run(scenario())
