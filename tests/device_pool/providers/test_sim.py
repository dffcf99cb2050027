"""SimProvider against real phone processes and the real adb server: create, reset, destroy, crash, close."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator

import pytest
from pydantic import ValidationError

from device_pool.driver import AdbDevice
from device_pool.providers import (
    DeviceProfile,
    Health,
    PhoneStartFailed,
    Provider,
    ProviderCapacity,
    SimProviderConfig,
    UnknownDevice,
    UnsupportedProfile,
)
from tests.aio import run
from tests.conditions import port_open, wait_until
from tests.conftest import ReservePorts
from tests.device_pool.providers.conftest import MakeSimProvider
from tests.processes import REPO, stop_process

LAUNCHER = "com.android.launcher3"


def pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def port_of(serial: str) -> int:
    return int(serial.rsplit(":", 1)[1])


async def _dirty(phone: AdbDevice) -> None:
    """What a user leaves behind: Wi-Fi off, a downloaded file, an app in front."""
    await phone.shell("settings put global wifi_on 0", check=True)
    await phone.push(b"the previous user's secret", "/sdcard/Download/x.txt")
    await phone.launch("Settings")
    assert (await phone.shell("settings get global wifi_on", check=True)).stdout.strip() == "0"
    assert "x.txt" in (await phone.shell("ls /sdcard/Download")).stdout


async def _factory_view(phone: AdbDevice) -> tuple[str, str, str]:
    """(wifi_on, listing of /sdcard/Download, foreground package)."""
    wifi = await phone.shell("settings get global wifi_on", check=True)
    listing = await phone.shell("ls /sdcard/Download")
    package, _activity = await phone.foreground()
    return wifi.stdout.strip(), listing.stdout, package


def test_config_refuses_count_beyond_max_count(tmp_path) -> None:
    with pytest.raises(ValidationError, match="exceeds max_count"):
        SimProviderConfig(data_root=tmp_path, count=3, max_count=2)


def test_create_reset_destroy_close(
    make_sim_provider: MakeSimProvider, adb_device: Callable[[str], AdbDevice]
) -> None:
    provider = make_sim_provider(count=1, max_count=2, labels={"pool": "test"})
    assert isinstance(provider, Provider)
    [first] = run(provider.start())
    # A second phone of another profile: the sim draws whatever size it is asked for.
    big = DeviceProfile(width=1080, height=2400, density=420)
    second = run(provider.create(big))
    a, b = first.serial, second.serial
    assert [s.serial for s in run(provider.list())] == [a, b]
    assert (first.provider, first.labels) == ("sim", {"pool": "test"})
    assert (first.profile.width, first.profile.height, first.profile.density) == (720, 1600, 320)
    assert (second.profile.width, second.profile.height) == (1080, 2400)
    assert first.profile.android == "13"
    assert {"com.android.settings", "com.phonefleet.shop"} <= set(first.profile.apps)
    with pytest.raises(ProviderCapacity):
        run(provider.create())

    pids = {s: provider.pid(s) for s in (a, b)}
    assert all(pid is not None and pid_alive(pid) for pid in pids.values())
    assert pids[a] != pids[b]  # one process per phone
    for serial in (a, b):
        health = run(provider.health(serial))
        assert health.ok, health
        assert health.latency_ms is not None and health.latency_ms > 0

    phone = adb_device(a)
    run(_dirty(phone))
    run(provider.reset(a))
    wifi, listing, package = run(_factory_view(phone))
    assert wifi == "1"
    assert "x.txt" not in listing
    assert package == LAUNCHER
    assert run(provider.health(a)).ok
    assert provider.pid(a) == pids[a]  # reset over adb, not a restart

    run(provider.destroy(b))
    assert not port_open("127.0.0.1", port_of(b))
    assert not pid_alive(pids[b])
    assert [s.serial for s in run(provider.list())] == [a]
    run(provider.destroy(b))  # idempotent
    with pytest.raises(UnknownDevice):
        run(provider.health(b))
    assert run(provider.health(a)).ok, "destroying a neighbour must not disturb this phone"
    assert provider.pid(a) == pids[a]

    run(provider.close())
    assert not pid_alive(pids[a])
    assert not port_open("127.0.0.1", port_of(a))
    assert run(provider.list()) == []


def test_killed_phone_is_reported_unhealthy_and_reset_brings_it_back(
    make_sim_provider: MakeSimProvider, adb_device: Callable[[str], AdbDevice]
) -> None:
    provider = make_sim_provider(count=1, max_count=1)
    [spec] = run(provider.start())
    pid = provider.pid(spec.serial)
    assert pid is not None
    os.kill(pid, signal.SIGKILL)

    def unhealthy() -> Health | None:
        health = run(provider.health(spec.serial))
        return None if health.ok else health

    health = wait_until(unhealthy, timeout=10, what="health reports the killed phone")
    # Depending on the race, the adb probe or the process check notices first; both say what failed.
    assert "not running" in health.detail or "offline" in health.detail, health
    assert not run(provider.health(spec.serial)).ok  # a plain call: reported, never raised

    run(provider.reset(spec.serial))  # restarts the phone, from factory state
    new_pid = provider.pid(spec.serial)
    assert new_pid is not None and new_pid != pid
    assert run(provider.health(spec.serial)).ok
    wifi, _listing, package = run(_factory_view(adb_device(spec.serial)))
    assert (wifi, package) == ("1", LAUNCHER)


def test_hung_phone_is_reported_unhealthy_and_reset_restarts_it(
    make_sim_provider: MakeSimProvider, adb_device: Callable[[str], AdbDevice]
) -> None:
    """A stopped (SIGSTOP) phone still accepts TCP connections but never answers: the worst case."""
    provider = make_sim_provider(
        count=1, max_count=1, health_timeout_s=1, command_timeout_s=2, stop_timeout_s=1
    )
    [spec] = run(provider.start())
    pid = provider.pid(spec.serial)
    assert pid is not None
    run(_dirty(adb_device(spec.serial)))
    os.kill(pid, signal.SIGSTOP)
    try:
        health = run(provider.health(spec.serial))
        assert not health.ok
        assert "1 s" in health.detail or "timeout" in health.detail, health

        run(provider.reset(spec.serial))  # the adb reset times out, so the phone is restarted
    finally:
        if pid_alive(pid):  # a failed assertion must not leave a stopped process behind
            os.kill(pid, signal.SIGCONT)
    assert not pid_alive(pid)
    assert provider.pid(spec.serial) != pid
    assert run(provider.health(spec.serial)).ok
    wifi, listing, package = run(_factory_view(adb_device(spec.serial)))
    assert (wifi, "x.txt" in listing, package) == ("1", False, LAUNCHER)


@pytest.fixture
def held_port(reserve_ports: ReservePorts) -> Iterator[tuple[int, socket.socket]]:
    """A port some other program listens on."""
    port = reserve_ports(2)  # its neighbour is held too, for the phone
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # beside the reservation's own socket
    sock.bind(("127.0.0.1", port))
    sock.listen()
    try:
        yield sock.getsockname()[1], sock
    finally:
        sock.close()


def test_create_skips_a_port_someone_else_holds(
    make_sim_provider: MakeSimProvider, held_port: tuple[int, socket.socket]
) -> None:
    port, _sock = held_port
    provider = make_sim_provider(base_port=port, max_count=2)
    spec = run(provider.create())
    assert spec.serial == f"127.0.0.1:{port + 1}"
    with pytest.raises(ProviderCapacity):
        run(provider.create())


def test_profiles_the_sim_cannot_make(make_sim_provider: MakeSimProvider) -> None:
    provider = make_sim_provider(max_count=1)
    with pytest.raises(UnsupportedProfile, match="Android 13"):
        run(provider.create(DeviceProfile(android="14")))
    with pytest.raises(UnsupportedProfile, match=r"com\.example\.missing"):
        run(provider.create(DeviceProfile(width=720, height=1600, apps=("com.example.missing",))))
    assert run(provider.list()) == []
    run(provider.create())  # the refused phone gave its port back


def test_a_phone_that_cannot_start_is_a_typed_error(make_sim_provider: MakeSimProvider) -> None:
    provider = make_sim_provider(python="/bin/false")
    with pytest.raises(PhoneStartFailed, match="exited with 1"):
        run(provider.create())
    assert run(provider.list()) == []


_ORPHANING_SCRIPT = """
import asyncio, sys
from pathlib import Path
from device_pool.providers import SimProvider, SimProviderConfig

config = SimProviderConfig(
    data_root=Path(sys.argv[1]), base_port=int(sys.argv[2]), max_count=1, adb_port=int(sys.argv[3]),
    width=720, height=1600, density=320,
)
provider = SimProvider(config)
spec = asyncio.run(provider.create())
print(provider.pid(spec.serial), flush=True)
sys.stdin.read()  # hold until the test kills us
"""


def _gone(pid: int) -> bool:
    """Exited: no such process, or a zombie nobody reaped yet (PID 1 in a container may not)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_phones_stop_when_their_provider_dies_without_close(tmp_path, adb_server, reserve_ports) -> None:
    port = reserve_ports(1)
    proc = subprocess.Popen(
        [sys.executable, "-c", _ORPHANING_SCRIPT, str(tmp_path), str(port), str(adb_server.port)],
        stdin=subprocess.PIPE, stdout=subprocess.PIPE, cwd=REPO,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        phone_pid = int(proc.stdout.readline())
        assert pid_alive(phone_pid)
        proc.kill()
        proc.wait(timeout=10)
        wait_until(lambda: _gone(phone_pid), timeout=10, what="the orphaned phone exits by itself")
        wait_until(lambda: not port_open("127.0.0.1", port), timeout=5, what="its port closes")
    finally:
        stop_process(proc)
