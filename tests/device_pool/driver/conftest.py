"""Driver fixtures: AdbDevice objects connected through the private adb server to real virtual phones."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from device_pool.driver import AdbDevice
from tests.device_pool.driver.aio import run
from tests.processes import AdbServer, SimPhones, start_sim

Connect = Callable[..., AdbDevice]


@pytest.fixture
def connect(adb_server: AdbServer) -> Connect:
    """Build an AdbDevice for phone ``i`` of a sim process and ``connect()`` it (adb connect + wait)."""

    def make(phones: SimPhones, i: int = 0, **kwargs: object) -> AdbDevice:
        device = AdbDevice(phones.serial(i), adb_port=adb_server.port, **kwargs)
        run(device.connect(timeout=30))
        return device

    return make


@pytest.fixture
def device(sim_phone: SimPhones, connect: Connect) -> AdbDevice:
    """The shared session phone, for tests that only read it (or write unique paths)."""
    return connect(sim_phone)


@pytest.fixture
def fresh_device(fresh_phone: SimPhones, connect: Connect) -> AdbDevice:
    """A phone of this test's own, for tests that change its state or kill it."""
    return connect(fresh_phone)


@pytest.fixture
def small_phone(tmp_path: Path) -> Iterator[SimPhones]:
    """A 720x1600 phone of this test's own."""
    phones = start_sim(tmp_path, width=720, height=1600, density=320)
    try:
        yield phones
    finally:
        phones.stop()


@pytest.fixture
def ten_phones(tmp_path: Path) -> Iterator[SimPhones]:
    """Ten phones in one `phonefleet sim --count 10` process (720x1600 keeps the traffic moderate)."""
    phones = start_sim(tmp_path, count=10, width=720, height=1600, density=320)
    try:
        yield phones
    finally:
        phones.stop()
