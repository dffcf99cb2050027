"""Ten phones, four concurrent streams each, through one adb server: no reply crosses streams or phones."""

from __future__ import annotations

import asyncio
import os

from device_pool.driver import AdbDevice
from tests.aio import run
from tests.conftest import Connect
from tests.processes import SimPhones

ROUNDS = 16


async def _echo_stream(device: AdbDevice, tag: str) -> list[tuple[str, str]]:
    """stdout and stderr carry this stream's own payload; the exit code is unique too."""
    seen = []
    for n in range(ROUNDS):
        payload = f"{tag}-{n}-{os.urandom(6).hex()}"
        out = await device.shell(f"echo {payload}; echo err-{payload} >&2; exit {n + 1}")
        seen.append((payload, out.stdout))
        assert out.stdout == payload + "\n", (payload, out)
        assert out.stderr == f"err-{payload}\n", (payload, out)
        assert out.exit_code == n + 1
    return seen


async def _file_stream(device: AdbDevice, tag: str) -> None:
    """Unique bytes pushed and pulled back over sync, and read through exec."""
    for n in range(ROUNDS // 2):
        payload = f"{tag}-{n}".encode() + os.urandom(100_000)
        path = f"/data/local/tmp/{tag}-{n}.bin"
        await device.push(payload, path)
        assert await device.pull(path) == payload
        assert await device.exec_out(f"cat {path}") == payload


async def _screenshot_stream(device: AdbDevice, reference: bytes) -> None:
    for _ in range(ROUNDS // 2):
        frame = await device.raw_frame()
        assert frame.buffer == reference
        png = await device.screenshot("png")
        assert png.size == (720, 1600)


async def _serial_stream(device: AdbDevice, expected: str) -> None:
    """Each phone answers with its own serial property: replies never come from a neighbour."""
    for _ in range(ROUNDS):
        out = await device.shell("getprop ro.serialno", check=True)
        assert out.stdout.strip() == expected


def test_ten_phones_four_streams_each(ten_phones: SimPhones, connect: Connect) -> None:
    devices = [connect(ten_phones, i) for i in range(ten_phones.count)]

    async def scenario() -> None:
        serials = await asyncio.gather(*(d.shell("getprop ro.serialno", check=True) for d in devices))
        expected = [s.stdout.strip() for s in serials]
        assert len(set(expected)) == len(devices)
        references = [(await d.raw_frame()).buffer for d in devices]
        # Each phone's clock differs by seed, so a frame from the wrong phone would not match.
        assert len(set(references)) == len(devices)
        streams = []
        for i, device in enumerate(devices):
            streams += [
                _echo_stream(device, f"p{i}-echo"),
                _file_stream(device, f"p{i}-file"),
                _screenshot_stream(device, references[i]),
                _serial_stream(device, expected[i]),
            ]
        await asyncio.gather(*streams)

    run(scenario(), timeout=240)
