"""``phonefleet pool`` as a process: it brings a virtual phone into the pool and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from orchestrator.db import DeviceState
from tests.aio import run
from tests.conditions import GiveUp, port_open, wait_until
from tests.conftest import ReservePorts
from tests.databases import open_sessions
from tests.processes import REPO, AdbServer, stop_process


async def _states(url: str) -> list[tuple[str, DeviceState]]:
    from device_pool.pool import DeviceStore

    async with open_sessions(url) as sessions:
        store = DeviceStore(sessions, "sqlite" if url.startswith("sqlite") else "postgresql")
        return [(row.serial, row.state) for row in await store.devices()]


def test_pool_command_registers_phones_and_stops_on_sigterm(
    pool_db_url: str, tmp_path: Path, adb_server: AdbServer, reserve_ports: ReservePorts
) -> None:
    base_port = reserve_ports(2)
    env = {
        **os.environ,
        "PHONEFLEET_DATABASE_URL": pool_db_url,
        "PHONEFLEET_DATA_DIR": str(tmp_path / "data"),
        "PHONEFLEET_POOL__PROVIDER": "sim",
        "PHONEFLEET_POOL__COUNT": "1",
        "PHONEFLEET_POOL__MIN_IDLE": "1",
        "PHONEFLEET_POOL__BASE_PORT": str(base_port),
    }
    log_path = tmp_path / "pool.log"
    command = [sys.executable, "-m", "orchestrator.cli", "pool", "--adb-port", str(adb_server.port)]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:

        def idle_phone() -> bool:
            if proc.poll() is not None:
                raise GiveUp(f"phonefleet pool exited with {proc.returncode}:\n{log_path.read_text()}")
            return run(_states(pool_db_url)) == [(f"127.0.0.1:{base_port}", DeviceState.IDLE)]

        wait_until(idle_phone, timeout=60, interval=0.2, what="the pool registers its phone idle")
        assert port_open("127.0.0.1", base_port)
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log_path.read_text()
        assert not port_open("127.0.0.1", base_port), "the phone process outlived the pool manager"
    finally:
        stop_process(proc)


def test_pool_command_static_adb_needs_a_devices_file(tmp_path: Path) -> None:
    env = {**os.environ, "PHONEFLEET_DATA_DIR": str(tmp_path), "PHONEFLEET_POOL__PROVIDER": "static_adb"}
    done = subprocess.run(
        [sys.executable, "-m", "orchestrator.cli", "pool"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=60,
    )  # fmt: skip
    assert done.returncode == 2
    assert "--devices-file" in done.stderr and "Traceback" not in done.stderr
