"""``phonefleet pool`` as a process: it brings a virtual phone into the pool and stops cleanly on SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from orchestrator.db import DeviceState
from tests.aio import run
from tests.conditions import GiveUp, port_open, wait_until
from tests.conftest import ReservePorts
from tests.databases import migrate_to_head, open_sessions, sqlite_url
from tests.processes import REPO, AdbServer, stop_process
from tests.redis_servers import private_redis


async def _states(url: str) -> list[tuple[str, DeviceState]]:
    from device_pool.pool import DeviceStore

    async with open_sessions(url) as sessions:
        store = DeviceStore(sessions, "sqlite" if url.startswith("sqlite") else "postgresql")
        return [(row.serial, row.state) for row in await store.devices()]


def _pool_with_an_idle_phone(
    env: dict[str, str], adb_port: int, log_path: Path, pool_db_url: str, base_port: int, *extra: str
) -> subprocess.Popen[bytes]:
    """``phonefleet pool`` (one sim phone on ``base_port``), returned once its phone is registered idle."""
    command = [sys.executable, "-m", "orchestrator.cli", "pool", "--adb-port", str(adb_port), *extra]
    with open(log_path, "wb") as log:  # the child keeps its own copy of the descriptor
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)

    def idle_phone() -> bool:
        if proc.poll() is not None:
            raise GiveUp(f"phonefleet pool exited with {proc.returncode}:\n{log_path.read_text()}")
        return run(_states(pool_db_url)) == [(f"127.0.0.1:{base_port}", DeviceState.IDLE)]

    try:
        wait_until(idle_phone, timeout=60, interval=0.2, what="the pool registers its phone idle")
    except BaseException:
        stop_process(proc)
        raise
    return proc


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
    proc = _pool_with_an_idle_phone(env, adb_server.port, log_path, pool_db_url, base_port)
    try:
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


def test_pool_command_stops_within_10_s_of_sigterm_with_its_redis_gone(
    pool_db_url: str, tmp_path: Path, adb_server: AdbServer, reserve_ports: ReservePorts
) -> None:
    """Redis stopped first, with lost tasks for the sweeper to re-send: SIGTERM still ends it within 10 s
    (before kombu's connect retries were bounded, each re-send held the stop for 5 s: 18 s here)."""
    base_port = reserve_ports(2)
    with private_redis(tmp_path / "redis") as redis_server:
        env = {
            **os.environ,
            "PHONEFLEET_DATABASE_URL": pool_db_url,
            "PHONEFLEET_REDIS_URL": redis_server.url,
            "PHONEFLEET_DATA_DIR": str(tmp_path / "data"),
            "PHONEFLEET_POOL__PROVIDER": "sim",
            "PHONEFLEET_POOL__COUNT": "1",
            "PHONEFLEET_POOL__MIN_IDLE": "1",
            "PHONEFLEET_POOL__BASE_PORT": str(base_port),
        }
        log_path = tmp_path / "pool.log"
        proc = _pool_with_an_idle_phone(
            env, adb_server.port, log_path, pool_db_url, base_port, "--sweep-interval", "1"
        )
        try:
            redis_server.stop()
            run(_add_lost_tasks(pool_db_url, 3))
            wait_until(
                lambda: "re-enqueue failed" in log_path.read_text(),
                timeout=30,
                what="the sweeper finds Redis gone",
            )
            signalled = time.monotonic()
            proc.send_signal(signal.SIGTERM)
            returncode = proc.wait(timeout=30)
            took_s = time.monotonic() - signalled
        finally:
            stop_process(proc)
    print(f"phonefleet pool exited {took_s:.1f} s after SIGTERM")
    assert returncode == 0, log_path.read_text()
    assert took_s < 10, (took_s, log_path.read_text())
    assert not port_open("127.0.0.1", base_port), "the phone process outlived the pool manager"


async def _add_lost_tasks(url: str, count: int) -> None:
    """``count`` tasks queued two minutes ago and never claimed: their messages look lost."""
    from tests.orchestrator.factories import in_seconds, make_task

    async with open_sessions(url) as sessions, sessions() as session, session.begin():
        for _ in range(count):
            await make_task(session, created_at=in_seconds(-120))


def test_pool_command_replaces_its_killed_or_wedged_adb_server_and_stops_it_on_sigterm(
    tmp_path: Path, reserve_ports: ReservePorts
) -> None:
    """No adb server on the port: the pool starts its own. Killed, then wedged (SIGSTOP), it is replaced
    within 10 s and the phone is back (`device`, idle). Wedged once more, SIGTERM at once still ends
    the pool within 10 s, and the adb server it started goes with it."""
    from device_pool.driver import AdbServerClient
    from device_pool.pool.adb_supervisor import adb_listeners

    url = sqlite_url(tmp_path / "pool.db")
    migrate_to_head(url)
    adb_port, base_port = reserve_ports(1), reserve_ports(2)
    (tmp_path / "adbhome").mkdir()
    env = {
        **os.environ,
        "HOME": str(tmp_path / "adbhome"),  # the pool's adb server writes its key there
        "PHONEFLEET_DATABASE_URL": url,
        "PHONEFLEET_DATA_DIR": str(tmp_path / "data"),
        "PHONEFLEET_POOL__PROVIDER": "sim",
        "PHONEFLEET_POOL__COUNT": "1",
        "PHONEFLEET_POOL__MIN_IDLE": "1",
        "PHONEFLEET_POOL__BASE_PORT": str(base_port),
    }
    serial = f"127.0.0.1:{base_port}"
    client = AdbServerClient(port=adb_port)  # asks the server; never starts one, unlike the adb client
    log_path = tmp_path / "pool.log"
    proc = _pool_with_an_idle_phone(env, adb_port, log_path, url, base_port, "--health-interval", "1")
    servers: list[int] = []
    took: dict[str, float] = {}

    def replaced(old: int) -> int | None:
        if proc.poll() is not None:
            raise GiveUp(f"phonefleet pool exited with {proc.returncode}:\n{log_path.read_text()}")
        listening = adb_listeners(adb_port)
        if listening in ([], [old]) or run(client.devices(timeout=1.0)).get(serial) != "device":
            return None
        return listening[0] if run(_states(url)) == [(serial, DeviceState.IDLE)] else None

    try:
        servers += adb_listeners(adb_port)
        assert len(servers) == 1, "the pool started one adb server"
        for name, sig in (("killed", signal.SIGKILL), ("wedged", signal.SIGSTOP)):
            started = time.monotonic()
            os.kill(servers[-1], sig)  # the adb server the pool started
            servers.append(wait_until(lambda: replaced(servers[-1]), timeout=60, interval=0.1, what=name))
            took[name] = time.monotonic() - started
        os.kill(servers[-1], signal.SIGSTOP)  # wedged again, and the pool told to stop before it notices
        signalled = time.monotonic()
        proc.send_signal(signal.SIGTERM)
        returncode = proc.wait(timeout=30)
        took["exit after SIGTERM, its adb server wedged"] = time.monotonic() - signalled
    finally:
        stop_process(proc)
        # An adb server the pool left behind (none should be): still on the port, and one of its pids.
        for pid in set(adb_listeners(adb_port)) & set(servers):
            os.kill(pid, signal.SIGCONT)
            os.kill(pid, signal.SIGKILL)
    print(", ".join(f"{what}: {seconds:.1f} s" for what, seconds in took.items()))
    assert returncode == 0, log_path.read_text()
    assert took["killed"] < 10 and took["wedged"] < 10, took
    assert took["exit after SIGTERM, its adb server wedged"] < 10, (took, log_path.read_text())
    assert not port_open("127.0.0.1", adb_port), "the pool's adb server outlived it"
    assert not port_open("127.0.0.1", base_port), "the phone process outlived the pool manager"
    assert "adb server restarted" in log_path.read_text()
