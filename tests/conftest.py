from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import AdbServer, SimPhones, adb_binary, start_adb_server, start_sim


@pytest.fixture(autouse=True)
def clean_environ(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests build their settings explicitly; nothing leaks in from the developer's shell."""
    for key in list(os.environ):
        if key.startswith("PHONEFLEET_"):
            monkeypatch.delenv(key)


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
