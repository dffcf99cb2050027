"""``phonefleet sim --base-port 0 --ports-file``: phones on ports the OS picks, reported once all listen."""

from __future__ import annotations

from pathlib import Path

from tests.conditions import port_open
from tests.processes import start_sim


def test_os_chosen_ports_are_reported_and_listening(tmp_path: Path) -> None:
    phones = start_sim(tmp_path, count=2)
    try:
        ports = phones.ports
        assert len(set(ports)) == 2 and all(port > 0 for port in ports)
        # Written once every phone listens: no phone is still binding when the file appears.
        assert all(port_open("127.0.0.1", port) for port in ports)
        assert phones.serials == [f"127.0.0.1:{port}" for port in ports]
        # Each phone keeps its own data, named after base port 0 + its index.
        assert sorted(p.name for p in tmp_path.glob("phone-*")) == ["phone-0", "phone-1"]
        assert not list(tmp_path.glob(".sim-ports.json.*"))  # the temp file was renamed into place
    finally:
        phones.stop()
