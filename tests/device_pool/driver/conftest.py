"""Driver fixtures: AdbDevice objects connected through the private adb server to real virtual phones."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.processes import SimPhones, start_sim


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
