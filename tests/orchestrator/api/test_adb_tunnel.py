"""The ADB tunnel with the real ``adb`` client: ``phonefleet adb SESSION_ID`` on one side, a virtual
phone's adbd on the other, the API's WebSocket in between (docs/security.md, "ADB tunnel").

The session leases a device row whose serial is the shared virtual phone's address; no pool manager
runs (nothing here resets the phone: the test only echoes through it).
"""

from __future__ import annotations

import asyncio
import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from sqlalchemy import select
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from orchestrator.cli.adb import TunnelServer
from orchestrator.db import Event, UserRole
from tests.aio import run
from tests.conditions import GiveUp, wait_until
from tests.databases import open_sessions
from tests.orchestrator.api.conftest import Api
from tests.orchestrator.factories import make_device
from tests.processes import REPO, AdbServer, SimPhones, stop_process

MARK = "through-the-tunnel"


def session_on(api: Api, phone: SimPhones, key_http) -> str:
    """A device row for the virtual phone, and a session on it: the session's id."""

    async def insert() -> None:
        async with open_sessions(api.db_url) as sessions, sessions.begin() as s:
            await make_device(s, serial=phone.serial(0))

    run(insert())
    r = key_http.post("/api/v1/sessions", json={"wait_s": 0, "ttl_s": 120})
    assert r.status_code == 201, r.text
    return r.json()["id"]


def adb_echo(adb: AdbServer, port: int) -> subprocess.CompletedProcess:
    serial = f"127.0.0.1:{port}"
    adb.run("connect", serial, timeout=20)
    return adb.run("-s", serial, "shell", "echo", MARK, timeout=20)


@contextmanager
def cli_tunnel(api: Api, key: str, session_id: str, log: Path) -> Iterator[tuple[subprocess.Popen, int]]:
    """``phonefleet adb`` as a user runs it: its process and the port it printed."""
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "orchestrator.cli", "adb", session_id, "--url", api.url, "--api-key", key],
            cwd=REPO, stdout=out, stderr=subprocess.STDOUT,
        )  # fmt: skip

    def port() -> int | None:
        if m := re.search(r"adb connect 127\.0\.0\.1:(\d+)", log.read_text()):
            return int(m.group(1))
        if proc.poll() is not None:
            raise GiveUp(f"phonefleet adb exited with {proc.returncode}:\n{log.read_text()}")
        return None

    try:
        yield proc, wait_until(port, timeout=30, what="phonefleet adb prints its port")
    finally:
        stop_process(proc)


@contextmanager
def raw_tunnel(api: Api, key: str, session_id: str) -> Iterator[int]:
    """The same local end with any key (the command itself checks the session first, so a bad key
    would never reach the tunnel): what the API does with it is what this tests."""
    loop = asyncio.new_event_loop()
    server = TunnelServer(api.url, key, session_id)
    port = loop.run_until_complete(server.start())
    thread = threading.Thread(target=loop.run_forever, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        asyncio.run_coroutine_threadsafe(server.close(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()


def ws_close_code(api: Api, session_id: str, key: str | None) -> int:
    url = api.url.replace("http://", "ws://") + f"/api/v1/sessions/{session_id}/adb"
    headers = {"Authorization": f"Bearer {key}"} if key else {}
    with connect(url, additional_headers=headers, open_timeout=10) as ws, pytest.raises(ConnectionClosed) as closed:
        ws.recv(timeout=15)
    assert closed.value.rcvd is not None, closed.value
    return closed.value.rcvd.code


def test_adb_shell_goes_through_the_tunnel_with_the_sessions_key_only_and_until_it_ends(
    own_api: Api, sim_phone: SimPhones, adb_server: AdbServer, tmp_path: Path
) -> None:
    caller = own_api.caller()
    stranger = own_api.caller(role=UserRole.ADMIN)  # another tenant's admin
    sid = session_on(own_api, sim_phone, caller.http)
    session = caller.http.get(f"/api/v1/sessions/{sid}").json()
    assert session["device"]["serial"] is None and session["adb"]["command"] == f"phonefleet adb {sid}"

    async def events() -> list[dict]:
        async with open_sessions(own_api.db_url) as sessions, sessions() as s:
            return list(await s.scalars(select(Event.payload).where(Event.tenant_id == caller.tenant_id)))

    seen = run(events())  # what the tenant's event socket and webhooks carry: no ADB address either
    assert any("device_id" in p for p in seen) and sim_phone.serial(0) not in json.dumps(seen)

    with cli_tunnel(own_api, caller.key, sid, tmp_path / "adb.log") as (proc, port):
        echoed = adb_echo(adb_server, port)
        assert echoed.returncode == 0 and echoed.stdout.decode().strip() == MARK, echoed

        # No key, or another tenant's: the API closes the tunnel before the phone hears a byte.
        for key in ("", stranger.key):
            with raw_tunnel(own_api, key, sid) as other_port:
                refused = adb_echo(adb_server, other_port)
                assert refused.returncode != 0 and MARK not in refused.stdout.decode(), refused
                adb_server.run("disconnect", f"127.0.0.1:{other_port}", timeout=10)
        assert ws_close_code(own_api, sid, None) == 4401
        assert ws_close_code(own_api, sid, stranger.key) == 4404
        # Nor does the command open one for a stranger: it says why and exits 1.
        theirs = subprocess.run(
            [sys.executable, "-m", "orchestrator.cli", "adb", sid, "--url", own_api.url, "--api-key", stranger.key],
            cwd=REPO, capture_output=True, timeout=60,
        )  # fmt: skip
        assert theirs.returncode == 1 and b"404 session_not_found" in theirs.stderr, theirs

        # The session ends: the API closes the tunnel, the command ends, adb reaches nothing.
        assert caller.http.delete(f"/api/v1/sessions/{sid}").json()["state"] == "closed"
        assert wait_until(lambda: proc.poll() is not None, timeout=20, what="phonefleet adb ends")
        assert proc.returncode == 0
        after = adb_server.run("-s", f"127.0.0.1:{port}", "shell", "echo", MARK, timeout=20)
        assert after.returncode != 0 and MARK not in after.stdout.decode(), after
        assert ws_close_code(own_api, sid, caller.key) == 4409
    adb_server.run("disconnect", f"127.0.0.1:{port}", timeout=10)


def test_an_open_tunnel_closes_when_its_key_is_revoked(own_api: Api, sim_phone: SimPhones) -> None:
    caller = own_api.caller()
    admin = own_api.caller(role=UserRole.ADMIN, tenant_id=caller.tenant_id)
    sid = session_on(own_api, sim_phone, caller.http)
    url = own_api.url.replace("http://", "ws://") + f"/api/v1/sessions/{sid}/adb"
    with connect(url, additional_headers={"Authorization": f"Bearer {caller.key}"}, open_timeout=10) as ws:
        with pytest.raises(TimeoutError):
            ws.recv(timeout=1.5)  # open: the phone says nothing until adb speaks
        assert admin.http.post(f"/api/v1/api-keys/{caller.key_id}/revoke").status_code == 200
        with pytest.raises(ConnectionClosed) as closed:
            ws.recv(timeout=15)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401, closed.value
