"""Provider fixtures: SimProviders on free ports of this test's own, closed when the test ends."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from device_pool.driver import AdbDevice
from device_pool.providers import SimProvider, SimProviderConfig
from tests.aio import run
from tests.conftest import ReservePorts
from tests.processes import AdbServer

MakeSimProvider = Callable[..., SimProvider]


@pytest.fixture
def make_sim_provider(
    tmp_path: Path, adb_server: AdbServer, reserve_ports: ReservePorts
) -> Iterator[MakeSimProvider]:
    """Build a SimProvider (720x1600 phones, a held block of ``max_count`` ports) that is closed at teardown."""
    providers: list[SimProvider] = []

    def make(**overrides: Any) -> SimProvider:
        max_count = overrides.pop("max_count", 2)
        config = SimProviderConfig(
            data_root=tmp_path / "phones",
            base_port=overrides.pop("base_port", None) or reserve_ports(max_count),
            max_count=max_count,
            adb_port=adb_server.port,
            width=720,
            height=1600,
            density=320,
            start_timeout_s=30,
            **overrides,
        )
        provider = SimProvider(config)
        providers.append(provider)
        return provider

    try:
        yield make
    finally:
        for provider in providers:
            run(provider.close())


@pytest.fixture
def adb_device(adb_server: AdbServer) -> Callable[[str], AdbDevice]:
    """An AdbDevice for a serial a provider handed out, through the private adb server."""
    return lambda serial: AdbDevice(serial, adb_port=adb_server.port)
