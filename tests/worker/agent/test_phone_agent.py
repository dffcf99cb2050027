"""``connect_phone`` uses the adb server that answers and starts none: a daemon it started would be
owned by nobody and outlive the worker and the pool (whoever starts a server stops it: the pool,
``phonefleet run``)."""

from __future__ import annotations

import pytest

from device_pool.driver import AdbDevice
from device_pool.errors import DeviceOffline
from device_pool.pool.adb_supervisor import adb_listeners
from tests.aio import run
from tests.conditions import reserved_ports
from tests.processes import AdbServer
from worker.agent.phone_agent import connect_phone


def test_with_no_adb_server_answering_it_says_so_and_starts_none() -> None:
    with reserved_ports() as port:
        with pytest.raises(DeviceOffline, match=f"no adb server answers at 127.0.0.1:{port}"):
            run(connect_phone("127.0.0.1:6520", adb_port=port))
        assert not adb_listeners(port), "connect_phone started an adb server"


def test_through_the_server_that_answers_it_reaches_the_phone(
    adb_server: AdbServer, fresh_device: AdbDevice
) -> None:
    device = run(connect_phone(fresh_device.serial, adb_port=adb_server.port))
    assert run(device.screen_size()) == run(fresh_device.screen_size())
