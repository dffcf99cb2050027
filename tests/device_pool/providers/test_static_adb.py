"""StaticAdbProvider against a virtual phone in its own process, standing in for a real handset."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from device_pool.driver import AdbDevice
from device_pool.errors import CommandFailed
from device_pool.providers import (
    DeviceProfile,
    DeviceSpec,
    Health,
    Provider,
    ProviderCapacity,
    StaticAdbConfig,
    StaticAdbProvider,
    StaticDevice,
    UnknownDevice,
)
from tests.aio import run
from tests.conditions import wait_until
from tests.processes import AdbServer, SimPhones

PROFILE = DeviceProfile(width=1080, height=2400, density=420, android="13", apps=("com.android.settings",))
CLEANUP = ("rm -f /sdcard/Download/x.txt", "settings put global wifi_on 1")


def make_provider(adb_server: AdbServer, *devices: StaticDevice) -> StaticAdbProvider:
    return StaticAdbProvider(
        StaticAdbConfig(devices=devices, adb_port=adb_server.port, command_timeout_s=10, health_timeout_s=5)
    )


def test_config_refuses_a_serial_listed_twice() -> None:
    phone = StaticDevice(serial="10.0.0.5:5555")
    with pytest.raises(ValidationError, match="listed twice"):
        StaticAdbConfig(devices=(phone, phone))


def test_list_health_reset_destroy(fresh_phone: SimPhones, adb_server: AdbServer) -> None:
    serial = fresh_phone.serial()
    listed = StaticDevice(serial=serial, profile=PROFILE, labels={"site": "lab"}, reset_commands=CLEANUP)
    provider = make_provider(adb_server, listed)
    assert isinstance(provider, Provider)
    try:
        expected = DeviceSpec(provider="static_adb", serial=serial, profile=PROFILE, labels={"site": "lab"})
        assert run(provider.start()) == [expected]
        assert run(provider.list()) == [expected]
        health = run(provider.health(serial))
        assert health.ok, health

        phone = AdbDevice(serial, adb_port=adb_server.port)

        async def dirty() -> None:
            await phone.shell("settings put global wifi_on 0", check=True)
            await phone.push(b"the previous user's secret", "/sdcard/Download/x.txt")
            await phone.push(b"not in the cleanup list", "/sdcard/Download/kept.txt")
            await phone.launch("Settings")
            assert {"x.txt", "kept.txt"} <= set((await phone.shell("ls /sdcard/Download")).stdout.split())

        async def after_reset() -> tuple[str, str, str]:
            wifi = await phone.shell("settings get global wifi_on", check=True)
            listing = await phone.shell("ls /sdcard/Download")
            package, _activity = await phone.foreground()
            return wifi.stdout.strip(), listing.stdout, package

        run(dirty())
        run(provider.reset(serial))
        wifi, listing, package = run(after_reset())
        assert wifi == "1"
        assert "x.txt" not in listing
        assert "kept.txt" in listing  # the configured commands are the whole reset: list every path
        assert package == "com.android.launcher3"

        with pytest.raises(ProviderCapacity):
            run(provider.create())
    finally:
        run(provider.close())


def test_wrong_size_and_failing_cleanup_are_reported(fresh_phone: SimPhones, adb_server: AdbServer) -> None:
    serial = fresh_phone.serial()
    small = DeviceProfile(width=720, height=1600)
    wrong = make_provider(adb_server, StaticDevice(serial=serial, profile=small, reset_commands=("exit 3",)))
    try:
        run(wrong.start())
        health = run(wrong.health(serial))
        assert not health.ok
        assert "1080x2400" in health.detail and "720x1600" in health.detail
        with pytest.raises(CommandFailed) as failed:
            run(wrong.reset(serial))
        assert failed.value.exit_code == 3
    finally:
        run(wrong.close())


def test_dead_phone_is_reported_then_destroy_drops_it(fresh_phone: SimPhones, adb_server: AdbServer) -> None:
    serial = fresh_phone.serial()
    provider = make_provider(adb_server, StaticDevice(serial=serial, profile=PROFILE))
    try:
        run(provider.start())
        assert run(provider.health(serial)).ok
        fresh_phone.proc.kill()
        fresh_phone.proc.wait(timeout=10)

        def unhealthy() -> Health | None:
            health = run(provider.health(serial))
            return None if health.ok else health

        health = wait_until(unhealthy, timeout=10, what="health reports the dead phone")
        assert health.detail
        assert not run(provider.health(serial)).ok  # reported, never raised

        run(provider.destroy(serial))
        assert run(provider.list()) == []
        with pytest.raises(UnknownDevice):
            run(provider.health(serial))
        run(provider.destroy(serial))  # idempotent
    finally:
        run(provider.close())
