"""A phone process killed in the middle of a command: every call ends in DeviceOffline, never a hang."""

from __future__ import annotations

import asyncio
import time

import pytest

from device_pool.driver import AdbDevice
from device_pool.errors import DeviceOffline
from tests.aio import phone_has_file, run, until
from tests.processes import SimPhones


def test_killing_the_phone_during_a_long_shell_command(
    fresh_phone: SimPhones, fresh_device: AdbDevice
) -> None:
    marker = f"running-{time.monotonic_ns()}"

    async def scenario() -> tuple[DeviceOffline, float]:
        task = asyncio.create_task(fresh_device.shell(f"touch /data/local/tmp/{marker} && sleep 5"))
        await until(phone_has_file(fresh_phone.data_root, marker), what="the command runs on the phone")
        killed_at = time.monotonic()
        fresh_phone.proc.kill()  # SIGKILL, this pid only
        with pytest.raises(DeviceOffline) as info:
            await task
        return info.value, time.monotonic() - killed_at

    error, latency = run(scenario(), timeout=30)
    assert latency < 3.0  # the kill, not the end of `sleep 5`, ended the call
    assert error.device_id == fresh_device.serial
    assert "sleep 5" in (error.command or "")
    assert error.retryable
    # Later calls fail fast and typed too.
    with pytest.raises(DeviceOffline):
        run(fresh_device.shell("echo hi", timeout=10))


def test_killing_the_phone_during_a_screenshot_loop(fresh_phone: SimPhones, fresh_device: AdbDevice) -> None:
    captured: list[int] = []

    async def loop(fmt: str) -> None:
        while True:
            image = await fresh_device.screenshot(fmt)  # type: ignore[arg-type]
            captured.append(image.width)

    async def scenario() -> list[BaseException]:
        tasks = [asyncio.create_task(loop(fmt)) for fmt in ("raw", "raw", "png")]
        await until(lambda: len(captured) >= 4, timeout=30, what="a few screenshots")
        fresh_phone.proc.kill()
        done = await asyncio.gather(*tasks, return_exceptions=True)
        return list(done)

    errors = run(scenario(), timeout=60)
    assert all(isinstance(err, DeviceOffline) for err in errors), errors


def test_killing_the_phone_during_pull(fresh_phone: SimPhones, fresh_device: AdbDevice) -> None:
    run(fresh_device.push(b"x" * 4_000_000, "/sdcard/big.bin"))
    pulled: list[int] = []

    async def loop() -> None:
        while True:
            pulled.append(len(await fresh_device.pull("/sdcard/big.bin")))

    async def scenario() -> BaseException:
        task = asyncio.create_task(loop())
        await until(lambda: len(pulled) >= 1, timeout=30, what="one pull")
        fresh_phone.proc.kill()
        return (await asyncio.gather(task, return_exceptions=True))[0]

    assert isinstance(run(scenario(), timeout=60), DeviceOffline)
    assert set(pulled) == {4_000_000}


def test_connect_to_a_dead_phone_raises_device_offline_by_the_deadline(
    fresh_phone: SimPhones, fresh_device: AdbDevice
) -> None:
    fresh_phone.stop()
    started = time.monotonic()
    with pytest.raises(DeviceOffline) as info:
        run(fresh_device.connect(timeout=3))
    assert time.monotonic() - started < 6
    assert info.value.command == "connect"


def test_unreachable_adb_server_is_device_offline(reserve_ports) -> None:
    nobody = AdbDevice("127.0.0.1:6999", adb_port=reserve_ports(1))  # held, never listened on
    with pytest.raises(DeviceOffline):
        run(nobody.shell("echo hi", timeout=5))
