"""Device API file transfer over real HTTP: files pushed to and pulled from a session's virtual phone
(checked with adb directly), and every path, size and caller the API refuses.
"""

from __future__ import annotations

import os
from collections.abc import AsyncGenerator, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from device_pool.driver import AdbDevice
from device_pool.driver.wire import SYNC_MAX_DATA
from device_pool.errors import CommandFailed
from orchestrator.db import SessionState
from orchestrator.services.device_api import _sized
from tests.aio import run
from tests.databases import device_serial, migrate_to_head

# Reused, not copied: the providers' SimProvider fixtures (their conftest is not above this folder).
from tests.device_pool.providers.conftest import MakeSimProvider, make_sim_provider  # noqa: F401
from tests.orchestrator.api.conftest import Caller, StartApi
from tests.orchestrator.api.pools import running_pool
from tests.orchestrator.api.test_device_api import PhoneApi, start
from tests.orchestrator.api.test_sessions import events_of
from tests.processes import AdbServer

LIMIT = 2 * 1024 * 1024  # device_api.file_max_bytes here: well over the API's 256 KiB for other bodies


@pytest.fixture
def files_api(
    start_api: StartApi,
    pg_url: str,
    adb_server: AdbServer,
    make_sim_provider: MakeSimProvider,  # noqa: F811
) -> Iterator[PhoneApi]:
    """One virtual phone in a running pool, and the API with a 2 MiB file limit."""
    migrate_to_head(pg_url)
    api = start_api(pg_url, webrtc={"adb_port": adb_server.port}, device_api={"file_max_bytes": LIMIT})
    with ExitStack() as stack:
        pool = stack.enter_context(running_pool(pg_url, make_sim_provider(count=1, max_count=1)))
        yield PhoneApi(api, pool, adb_server)


def sdcard(tmp_path: Path) -> Path:
    """The virtual phone's /sdcard on this machine (the test's one phone)."""
    [fs_root] = [p for p in (tmp_path / "phones").rglob("fs") if p.is_dir()]
    return fs_root / "storage" / "emulated" / "0"


def pushed(caller: Caller, sid: str, path: str, data: bytes) -> dict[str, Any]:
    r = caller.http.put(f"/api/v1/sessions/{sid}/files", params={"path": path}, content=data)
    assert r.status_code == 200, r.text
    return r.json()


def pulled(caller: Caller, sid: str, path: str) -> bytes:
    r = caller.http.get(f"/api/v1/sessions/{sid}/files", params={"path": path})
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "application/octet-stream"
    return r.content


def test_files_make_a_byte_identical_round_trip_and_are_on_the_timeline(
    files_api: PhoneApi, tmp_path: Path
) -> None:
    caller = files_api.api.caller()
    session = start(caller)
    sid, serial = session["id"], device_serial(files_api.api.db_url, session["device"]["id"])
    binary = bytes(range(256)) * 3 + b"\x00\r\n\x1a\xff\xfe"  # every byte value, NULs and line ends
    big = os.urandom(1024 * 1024)

    assert pushed(caller, sid, "/sdcard/Download/x.bin", binary) == {
        "type": "push_file", "path": "/sdcard/Download/x.bin", "bytes": len(binary),
    }  # fmt: skip
    assert run(files_api.phone(serial).pull("/sdcard/Download/x.bin")) == binary  # on the phone, as sent
    assert pulled(caller, sid, "/sdcard/Download/x.bin") == binary

    # Folders on the way are made; repeated slashes are folded.
    assert (
        pushed(caller, sid, "/sdcard//Music/deep/er/big.bin", big)["path"] == "/sdcard/Music/deep/er/big.bin"
    )
    assert pulled(caller, sid, "/sdcard/Music/deep/er/big.bin") == big
    pushed(caller, sid, "/sdcard/Download/x.bin", b"replaced")  # a push replaces the file
    assert pulled(caller, sid, "/sdcard/Download/x.bin") == b"replaced"
    assert pulled(caller, sid, "/sdcard/Download/x.bin") != binary
    empty = pushed(caller, sid, "/sdcard/Download/empty.txt", b"")
    assert empty["bytes"] == 0 and pulled(caller, sid, "/sdcard/Download/empty.txt") == b""

    check_streamed_pull(files_api, caller, sid, serial, tmp_path)

    actions = [
        p["action"] for t, p in events_of(files_api.api.db_url, caller.tenant_id) if t == "session.action"
    ]
    assert [(a["type"], a["path"], a["bytes"]) for a in actions] == [
        ("push_file", "/sdcard/Download/x.bin", len(binary)),
        ("pull_file", "/sdcard/Download/x.bin", len(binary)),
        ("push_file", "/sdcard/Music/deep/er/big.bin", len(big)),
        ("pull_file", "/sdcard/Music/deep/er/big.bin", len(big)),
        ("push_file", "/sdcard/Download/x.bin", 8),
        ("pull_file", "/sdcard/Download/x.bin", 8),
        ("pull_file", "/sdcard/Download/x.bin", 8),
        ("push_file", "/sdcard/Download/empty.txt", 0),
        ("pull_file", "/sdcard/Download/empty.txt", 0),
        *[("pull_file", "/sdcard/Download/big.bin", LIMIT - 12345)] * 3,
    ]


def check_streamed_pull(files_api: PhoneApi, caller: Caller, sid: str, serial: str, tmp_path: Path) -> None:
    """A file of many sync packets (2 MiB: 32 of 64 KiB) comes back byte-identical with its size as
    Content-Length; the driver hands it on packet by packet, so what the API holds at once is one
    packet, whatever the file's size; a reader that stops early leaves the phone free."""
    data = os.urandom(LIMIT - 12345)  # not a whole number of packets: the last one is short
    (sdcard(tmp_path) / "Download").mkdir(exist_ok=True)
    (sdcard(tmp_path) / "Download" / "big.bin").write_bytes(data)  # made on the phone's own storage

    r = caller.http.get(f"/api/v1/sessions/{sid}/files", params={"path": "/sdcard/Download/big.bin"})
    assert r.status_code == 200 and r.headers["content-length"] == str(len(data))
    assert r.headers["content-disposition"] == "attachment; filename*=UTF-8''big.bin"
    assert r.content == data

    async def chunks() -> list[bytes]:
        phone = files_api.phone(serial)
        await phone.connect(timeout=30)
        return [chunk async for chunk in phone.pull_chunks("/sdcard/Download/big.bin")]

    got = run(chunks())
    assert len(got) >= len(data) // SYNC_MAX_DATA and all(0 < len(c) <= SYNC_MAX_DATA for c in got)
    assert b"".join(got) == data

    # A client that reads a little and hangs up: the phone serves the next call as before.
    with caller.http.stream(
        "GET", f"/api/v1/sessions/{sid}/files", params={"path": "/sdcard/Download/big.bin"}
    ) as partial:
        assert partial.status_code == 200 and len(next(partial.iter_raw())) > 0
    assert pulled(caller, sid, "/sdcard/Download/big.bin") == data


def test_a_file_that_changes_size_while_pulled_ends_the_stream_with_an_error() -> None:
    """The stream's own check (no phone can be made to grow a file at the right instant): more or
    fewer bytes than the Content-Length announced end it with an error, which cuts the answer off."""

    async def packets(*sizes: int) -> AsyncGenerator[bytes, None]:
        for size in sizes:
            yield b"x" * size

    async def streamed(size: int, *sizes: int) -> bytes:
        first, *rest = sizes
        stream = _sized(AdbDevice("sim:1"), "/sdcard/a.bin", size, b"x" * first, packets(*rest))
        return b"".join([chunk async for chunk in stream])

    assert run(streamed(7, 3, 4)) == b"x" * 7
    assert run(streamed(0, 0)) == b""
    for sizes in ((3, 4, 1), (3, 3)):  # grew; shrank
        with pytest.raises(CommandFailed, match="changed size while it was pulled"):
            run(streamed(7, *sizes))


def test_wrong_paths_sizes_and_callers_get_clear_4xx(files_api: PhoneApi, tmp_path: Path) -> None:
    api = files_api.api
    caller, stranger = api.caller(), api.caller()
    colleague = api.caller(tenant_id=caller.tenant_id)
    session = start(caller)
    sid, serial = session["id"], device_serial(files_api.api.db_url, session["device"]["id"])
    url = f"/api/v1/sessions/{sid}/files"
    pushed(caller, sid, "/sdcard/kept/a.txt", b"kept")
    # Links planted on the phone's storage (its shell has no ln): out of the root, and to a file.
    card = sdcard(tmp_path)
    (card / "escape").symlink_to("/etc")
    (card / "hostname.txt").symlink_to("/etc/hostname")

    def refused(method: str, path: str, status: int, code: str, words: str, who: Caller = caller) -> None:
        r = who.http.request(method, url, params={"path": path}, content=b"x" if method == "PUT" else None)
        assert r.status_code == status and r.json()["error"] == code, (path, r.text)
        assert words in r.json()["message"], (path, r.json()["message"])

    for method in ("PUT", "GET"):
        refused(method, "/sdcard/../data/x.txt", 422, "path_not_allowed", "'..'")
        refused(method, "/sdcard/./x.txt", 422, "path_not_allowed", "'.'")
        refused(method, "sdcard/x.txt", 422, "path_not_allowed", "absolute")
        refused(
            method, "/data/local/tmp/x.txt", 422, "path_not_allowed", "outside the allowed folders /sdcard/"
        )
        refused(method, "/sdcardx/y.txt", 422, "path_not_allowed", "outside the allowed folders")
        refused(method, "/sdcard/a\x00b.txt", 422, "path_not_allowed", "NUL")
        refused(method, "/sdcard/", 422, "path_not_allowed", "folder")
        refused(method, "/sdcard/kept", 422, "path_not_allowed", "is a folder")
        refused(method, "/sdcard/kept/a.txt/b.txt", 422, "path_not_allowed", "not a folder")
        refused(
            method, "/sdcard/escape/hostname", 422, "path_not_allowed", "/sdcard/escape is a symbolic link"
        )
        refused(method, "/sdcard/hostname.txt", 422, "path_not_allowed", "symbolic link")
        # Another tenant's session is not found; a colleague may not move the user's files.
        refused(method, "/sdcard/kept/a.txt", 404, "session_not_found", "", who=stranger)
        refused(method, "/sdcard/kept/a.txt", 403, "permission_denied", "only its user", who=colleague)
    assert (
        not (Path("/etc") / "x").exists() and (card / "escape").is_symlink()
    )  # nothing written through a link
    refused("GET", "/sdcard/nothing/here.txt", 404, "file_not_found", "no file at /sdcard/nothing/here.txt")
    missing = caller.http.get(url)
    assert missing.status_code == 422 and "path" in missing.json()["message"]

    # The file limit, not the API's 256 KiB: exactly the limit goes, one byte more is 413.
    assert pushed(caller, sid, "/sdcard/limit.bin", b"\x01" * LIMIT)["bytes"] == LIMIT
    over = caller.http.put(url, params={"path": "/sdcard/over.bin"}, content=b"\x01" * (LIMIT + 1))
    assert over.status_code == 413 and over.json()["error"] == "payload_too_large", over.text
    assert f"{LIMIT} bytes" in over.json()["message"] and "file_max_bytes" in over.json()["message"]
    chunked = caller.http.put(
        url, params={"path": "/sdcard/over.bin"}, content=iter([b"\x01" * LIMIT, b"\x01"])
    )
    assert chunked.status_code == 413 and "file_max_bytes" in chunked.json()["message"]
    assert files_api.shell(serial, "ls /sdcard").split().count("over.bin") == 0
    # Other bodies keep the API's own limit.
    big_json = caller.http.post("/api/v1/sessions", content=b"{" + b" " * (300 * 1024) + b"}",
                                headers={"Content-Type": "application/json"})  # fmt: skip
    assert big_json.status_code == 413 and "file_max_bytes" not in big_json.json()["message"]

    actions = [p["action"] for t, p in events_of(api.db_url, caller.tenant_id) if t == "session.action"]
    assert [a["path"] for a in actions] == ["/sdcard/kept/a.txt", "/sdcard/limit.bin"]  # refusals unrecorded

    assert caller.http.delete(f"/api/v1/sessions/{sid}").json()["state"] == SessionState.CLOSED.value
    refused("PUT", "/sdcard/kept/b.txt", 409, "no_live_device", "closed")
    refused("GET", "/sdcard/kept/a.txt", 409, "no_live_device", "closed")
