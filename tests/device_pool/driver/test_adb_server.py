"""The adb server client: host services against the real Debian adb server, and stopping a server
(it starts none: docs/adb.md)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from device_pool.driver import AdbDevice, AdbServerClient, default_adb_path
from device_pool.errors import DeviceOffline
from tests.aio import run
from tests.conditions import port_open, wait_until
from tests.conftest import ReservePorts
from tests.processes import AdbServer, SimPhones, stop_process


def test_version_and_devices(adb_server: AdbServer, device: AdbDevice) -> None:
    client = AdbServerClient(port=adb_server.port)
    assert run(client.version()) >= 39
    assert run(client.devices())[device.serial] == "device"
    assert run(client.state(device.serial)) == "device"


def test_connect_disconnect_and_reconnect(adb_server: AdbServer, fresh_phone: SimPhones) -> None:
    phone = AdbDevice(fresh_phone.serial(), adb_port=adb_server.port)
    run(phone.connect())
    run(phone.disconnect())
    wait_until(lambda: fresh_phone.serial() not in run(phone.server.devices()), timeout=10, what="gone")
    with pytest.raises(DeviceOffline):
        run(phone.shell("echo hi"))
    run(phone.disconnect())  # already disconnected: not an error
    run(phone.connect())
    assert run(phone.shell("echo back")).stdout == "back\n"


def test_state_of_an_unknown_serial_is_device_offline(adb_server: AdbServer) -> None:
    client = AdbServerClient(port=adb_server.port)
    with pytest.raises(DeviceOffline) as info:
        run(client.state("127.0.0.1:1"))
    assert info.value.device_id == "127.0.0.1:1"


def test_default_adb_is_debians_when_on_path() -> None:
    assert default_adb_path() == shutil.which("adb")


def test_kill_stops_a_server(tmp_path: Path, reserve_ports: ReservePorts) -> None:
    """kill() sends host:kill: the server exits; asking again once it is gone is not an error."""
    port = reserve_ports(1)
    env = {"HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}
    server = subprocess.Popen([shutil.which("adb") or "adb", "-P", str(port), "server", "nodaemon"], env=env,
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    client = AdbServerClient(port=port)
    try:
        wait_until(lambda: run(client.version(timeout=1)) >= 39, timeout=30, what="the server answering")
        run(client.kill())
        assert server.wait(10) == 0
        run(client.kill())  # already gone: nothing to do
    finally:
        stop_process(server)
    wait_until(lambda: not port_open("127.0.0.1", port), timeout=10, what="server gone")
