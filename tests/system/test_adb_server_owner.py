"""Whoever starts an adb server owns it and stops it: ``phonefleet pool`` and ``phonefleet worker`` as
separate processes on a port where no adb server ran leave none behind once they stop.

The pool starts its server as its own child and stops it when it stops. A worker starts none: it
reaches phones through the pool's. Even when the pool has stopped and the worker still leases a
phone row (the attempt then ends "phone unreachable", an infrastructure failure), the worker must not
start a daemon server of its own, which would outlive every process of the fleet, owned by nobody.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from device_pool.pool.adb_supervisor import adb_listeners
from tests.conditions import reserved_ports, wait_until
from tests.processes import AdbServer, adb_binary
from tests.system.conftest import fleet_starter


def test_a_pool_and_a_worker_leave_no_adb_server_running(tmp_path: Path, fleet_pg_url: str, redis_db: str) -> None:
    binary = adb_binary()
    if binary is None:
        pytest.skip("adb is not installed")
    home = tmp_path / "adb-home"
    home.mkdir()
    with reserved_ports() as port:
        assert not adb_listeners(port)
        # No server on the port: the fleet's processes are all that could start one there.
        nobody: AdbServer = AdbServer(proc=None, port=port, home=home, binary=binary)  # type: ignore[arg-type]
        with fleet_starter(tmp_path, fleet_pg_url, redis_db, nobody) as start:
            fleet = start(1, PHONEFLEET_TASKS__MAX_INFRA_ATTEMPTS="1")
            [started] = adb_listeners(port)  # the pool's own server, its child
            model = fleet.start_model(['finish(message="done")'])
            fleet.start_worker(model.base_url)
            task = fleet.submit("Open Settings", timeout_s=60)
            assert fleet.wait_status(task["id"], ("succeeded",), timeout=60)["status"] == "succeeded"
            wait_until(lambda: fleet.devices("idle"), timeout=60, interval=0.2, what="the phone reset")

            # The pool stops, and its adb server with it; its phone's row is still there to lease.
            fleet.service("pool").stop(30)
            wait_until(lambda: not adb_listeners(port), timeout=15, interval=0.1, what="the pool's adb server gone")
            assert started not in _adb_pids()
            task = fleet.submit("Open Settings", timeout_s=60)
            done = fleet.wait_status(task["id"], ("failed",), timeout=90)
            # The worker leased the row and tried the phone through no server: it said so, started none.
            assert done["reason"] == "device_error" and "no adb server answers" in done["message"], done
            assert not adb_listeners(port), "the worker started an adb server"
            fleet.stop()
        assert not adb_listeners(port), "an adb server outlived the fleet"


def _adb_pids() -> list[int]:
    out = subprocess.run(["pgrep", "-x", "adb"], capture_output=True, text=True).stdout
    return [int(pid) for pid in out.split()]
