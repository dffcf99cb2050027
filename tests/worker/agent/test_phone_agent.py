"""``connect_phone`` uses the adb server that answers and starts none: a daemon it started would be
owned by nobody and outlive the worker and the pool (whoever starts a server stops it: the pool,
``phonefleet run``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from device_pool.driver import AdbDevice
from device_pool.errors import DeviceOffline
from device_pool.pool.adb_supervisor import adb_listeners
from tests.aio import run
from tests.conditions import reserved_ports
from tests.processes import REPO, AdbServer, ReferenceModel, SimPhones
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


def test_phonefleet_run_starts_its_own_adb_server_only_when_none_answers_and_stops_it(
    fresh_phone: SimPhones, reference_model: ReferenceModel, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    home.mkdir()
    with reserved_ports() as port:
        cmd = [sys.executable, "-m", "orchestrator.cli", "run", "Open Settings", "--device", fresh_phone.serial(),
               "--adb-port", str(port), "--model-url", reference_model.base_url, "--max-steps", "3",
               "--out", str(tmp_path / "out")]  # fmt: skip
        env = {**os.environ, "HOME": str(home)}  # the new server's key goes there, not the user's
        done = subprocess.run(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                              timeout=180)  # fmt: skip
        # It reached the phone through the server it started, and stopped that server on its way out.
        assert done.returncode == 0, done.stdout + done.stderr
        result = json.loads((tmp_path / "out" / "result.json").read_text())
        assert result["status"] == "succeeded" and result["steps"], result
        assert not adb_listeners(port), "phonefleet run left its adb server running"
