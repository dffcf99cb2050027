from __future__ import annotations

import contextlib
import os
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from device_pool.driver import AdbDevice
from tests.aio import run
from tests.conditions import reserved_ports
from tests.processes import AdbServer, SimPhones, adb_binary, start_adb_server, start_sim


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests build their settings explicitly; nothing leaks in from the developer's shell."""
    for key in list(os.environ):
        if key.startswith("PHONEFLEET_"):
            monkeypatch.delenv(key)


ReservePorts = Callable[..., int]


@pytest.fixture
def reserve_ports() -> Iterator[ReservePorts]:
    """``reserve_ports(count)``: a base port P with P..P+count-1 held for this test's children until it
    ends (``tests.conditions.reserved_ports``), for programs that take port numbers, not port 0."""
    with contextlib.ExitStack() as stack:
        yield lambda count=1: stack.enter_context(reserved_ports(count))


@pytest.fixture(scope="session")
def sim_phone(tmp_path_factory: pytest.TempPathFactory) -> Iterator[SimPhones]:
    """One virtual phone (1080x2400) in its own `phonefleet sim` process, shared by read-mostly tests."""
    phones = start_sim(tmp_path_factory.mktemp("sim"), count=1)
    try:
        yield phones
    finally:
        phones.stop()


@pytest.fixture
def fresh_phone(tmp_path: Path) -> Iterator[SimPhones]:
    """A virtual phone of this test's own, for tests that change its state."""
    phones = start_sim(tmp_path, count=1)
    try:
        yield phones
    finally:
        phones.stop()


@pytest.fixture(scope="session")
def adb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AdbServer]:
    binary = adb_binary()
    if binary is None:
        pytest.skip("Debian's adb client is not installed (`apt-get install adb`; .ci/run does it)")
    server = start_adb_server(tmp_path_factory.mktemp("adbhome"), binary)
    try:
        yield server
    finally:
        server.stop()


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


REDIS_URL = "redis://127.0.0.1:6379/0"


@pytest.fixture
def redis_prefix() -> Iterator[str]:
    """A Redis key prefix of this test's own; its keys are deleted afterwards."""
    import uuid

    import redis

    prefix = f"pftest:{uuid.uuid4().hex[:12]}:"
    yield prefix
    r = redis.Redis.from_url(REDIS_URL)
    try:
        keys = list(r.scan_iter(match=f"{prefix}*"))
        if keys:
            r.delete(*keys)
    finally:
        r.close()
