"""Export and import of personal phones, for real: the API over HTTP, a pool manager with two virtual
phones (their data on disk, where the API reads it), the real adb server and driver.

P is logged in to the Bank by hand (the driver's taps, as through the live view), exported, and
imported as Q: a session on Q finds the Bank logged in, read from Q's own files. Archives of
another deployment's key, altered ones, and ones whose members would land outside the phone's
directory are refused; another tenant's phone cannot be exported.
"""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from orchestrator.db import UserRole
from orchestrator.services.phone_archives import MAGIC, archive_cipher
from tests.databases import device_serial, migrate_to_head
from tests.orchestrator.api.conftest import Api, Caller, StartApi, StartPool
from tests.orchestrator.api.test_personal_phone_sessions import (
    close,
    log_in_to_the_bank,
    make_phone,
    open_session,
    signed_in,
    wait_phone,
)
from tests.processes import AdbServer

KEY = "this deployment's export key"


@pytest.fixture
def own_api(start_api: StartApi, pg_url: str, tmp_path: Path) -> Api:
    """The API on a database of this test's own, reading personal data where the pool keeps it
    (``start_pool``: ``tmp_path/personal``), with an export key of its own."""
    migrate_to_head(pg_url)
    return start_api(pg_url, personal_phones={"data_dir": tmp_path / "personal", "export_key": KEY})


def import_(caller: Caller, archive: bytes, **params: str):
    return caller.http.post(
        "/api/v1/personal-phones/import",
        content=archive,
        params=params,
        headers={"Content-Type": "application/octet-stream"},
    )


def sealed(members: dict[str, bytes], key: str = KEY) -> bytes:
    """An archive as an export is made, with these members (to try what the API must refuse)."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return archive_cipher(key).seal(buffer.getvalue())


def test_an_exported_phone_imports_with_its_logins_and_nothing_else_imports(
    own_api: Api, start_api: StartApi, start_pool: StartPool, adb_server: AdbServer, tmp_path: Path
) -> None:
    start_pool(2)
    adb = adb_server.port
    me = own_api.caller()
    p = make_phone(me, "P")

    held = open_session(me, personal_phone_id=p)
    assert log_in_to_the_bank(device_serial(own_api.db_url, held["device"]["id"]), adb).startswith("$")
    busy = me.http.get(f"/api/v1/personal-phones/{p}/export")
    assert busy.status_code == 409 and busy.json()["error"] == "personal_phone_in_use"
    assert "in_use" in busy.json()["message"]
    close(me, held)
    wait_phone(me, p, "ready")

    exported = me.http.get(f"/api/v1/personal-phones/{p}/export")
    assert exported.status_code == 200, exported.text
    assert exported.headers["content-type"] == "application/octet-stream"
    archive = exported.content
    assert archive.startswith(MAGIC) and b"com.phonefleet.bank" not in archive  # encrypted
    # Opened with the deployment's key: the phone's own files, and of the fleet's records only the
    # phone's name and profile and the provider that made it (docs/security.md, "Secrets vault": nothing the fleet recorded of a
    # task or the vault goes in).
    with tarfile.open(fileobj=io.BytesIO(archive_cipher(KEY).open(archive)), mode="r:gz") as tar:
        members = tar.getnames()
        meta = json.loads(tar.extractfile("phonefleet-export.json").read())  # type: ignore[union-attr]
    assert all(m == "phonefleet-export.json" or m == "data" or m.startswith("data/") for m in members), members
    assert any("com.phonefleet.bank" in m for m in members), members  # the Bank's login is the phone's data
    # (the provider that made the data, and on redroid its image, say who may import it back)
    assert set(meta) <= {"format", "name", "device_profile", "provider", "image"} and meta["name"] == "P", meta
    assert meta["provider"] == "sim", meta
    # Its data left the deployment: an audit entry, read by the tenant's admin.
    admin = own_api.caller(role=UserRole.ADMIN, tenant_id=me.tenant_id)
    [entry] = admin.http.get("/api/v1/audit", params={"action": "personal_phone.export"}).json()["items"]
    assert entry["target"] == f"personal_phone:{p}" and entry["detail"] == {"name": "P", "bytes": len(archive)}

    made = import_(me, archive, name="Q")
    assert made.status_code == 201, made.text
    q = made.json()
    assert q["id"] != p and q["name"] == "Q" and q["state"] == "asleep"
    assert (tmp_path / "personal" / q["id"]).is_dir()
    on_q = open_session(me, personal_phone_id=q["id"])
    assert on_q["device"]["id"] != held["device"]["id"]  # P keeps its device: Q woke on the other
    assert signed_in(device_serial(own_api.db_url, on_q["device"]["id"]), adb)  # the Bank's login came with the data
    close(me, on_q)
    # Without ?name= the import is named as the exported phone.
    assert import_(me, archive).json()["name"] == "P"

    # Another deployment (same database, another key) refuses it, saying why.
    elsewhere = start_api(
        own_api.db_url, personal_phones={"data_dir": tmp_path / "other", "export_key": "another"}
    )
    foreign = import_(elsewhere.caller(), archive)
    assert foreign.status_code == 422 and foreign.json()["error"] == "personal_phone_archive_foreign"
    assert "made by another deployment: its key does not match" in foreign.json()["message"]

    # Altered in transit: one byte of the token changed.
    altered = bytearray(archive)
    altered[-10] = ord("A") if altered[-10] != ord("A") else ord("B")
    damaged = import_(me, bytes(altered))
    assert damaged.status_code == 422 and damaged.json()["error"] == "personal_phone_archive_damaged"
    junk = import_(me, b"not an archive")
    assert junk.status_code == 422 and junk.json()["error"] == "personal_phone_archive_damaged"

    # Sealed with the right key, but a member would escape the phone's directory.
    escaping = sealed({"phonefleet-export.json": b'{"name": "X"}', "data/../../escaped": b"x"})
    unsafe = import_(me, escaping)
    assert unsafe.status_code == 422 and unsafe.json()["error"] == "personal_phone_archive_unsafe"
    assert not (tmp_path / "escaped").exists() and not (tmp_path / "personal" / "escaped").exists()
    absolute = import_(me, sealed({"phonefleet-export.json": b"{}", "/etc/escaped": b"x"}))
    assert absolute.status_code == 422 and absolute.json()["error"] == "personal_phone_archive_unsafe"
    names = sorted(phone["name"] for phone in me.http.get("/api/v1/personal-phones").json()["items"])
    assert names == ["P", "P", "Q"]  # no phone came of a refused archive

    # Another tenant, and another user of the tenant: P does not exist for them.
    stranger = own_api.caller()
    hidden = stranger.http.get(f"/api/v1/personal-phones/{p}/export")
    assert hidden.status_code == 404 and hidden.json()["error"] == "personal_phone_not_found"
    colleague = own_api.caller(tenant_id=me.tenant_id)
    assert colleague.http.get(f"/api/v1/personal-phones/{p}/export").status_code == 404


def test_an_import_has_its_own_body_limit(start_api: StartApi, pg_url: str, tmp_path: Path) -> None:
    migrate_to_head(pg_url)
    api = start_api(pg_url, personal_phones={"data_dir": tmp_path / "personal", "max_archive_bytes": 1 << 20})
    me = api.caller()
    # Past the API's usual 256 KB, within personal_phones.max_archive_bytes: read, and judged.
    within = import_(me, MAGIC + b"0" * 16 + b"\n" + b"x" * (600 << 10))
    assert within.status_code == 422 and within.json()["error"] == "personal_phone_archive_foreign"
    beyond = import_(me, MAGIC + b"0" * 16 + b"\n" + b"x" * (2 << 20))
    assert beyond.status_code == 413 and beyond.json()["error"] == "payload_too_large"
    # Other routes keep theirs.
    big = me.http.post(
        "/api/v1/personal-phones", content=b"x" * (600 << 10), headers={"Content-Type": "application/json"}
    )
    assert big.status_code == 413
    assert me.http.get("/api/v1/personal-phones").json()["items"] == []
    # No export_key set (dev): one was made, readable by this deployment alone.
    assert (api.settings.data_dir / "export.key").stat().st_mode & 0o777 == 0o600


def test_links_and_strays_in_an_archive_are_refused(start_api: StartApi, pg_url: str, tmp_path: Path) -> None:
    migrate_to_head(pg_url)
    api = start_api(pg_url, personal_phones={"data_dir": tmp_path / "personal", "export_key": KEY})
    me = api.caller()
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        tar.addfile(tarfile.TarInfo("phonefleet-export.json"), io.BytesIO(b""))
        link = tarfile.TarInfo("data/passwd")
        link.type, link.linkname = tarfile.SYMTYPE, "/etc/passwd"
        tar.addfile(link)
    linked = import_(me, archive_cipher(KEY).seal(buffer.getvalue()))
    assert linked.status_code == 422 and "link" in linked.json()["message"]
    stray = import_(me, sealed({"phonefleet-export.json": b"{}", "elsewhere/file": b"x"}))
    assert stray.status_code == 422 and stray.json()["error"] == "personal_phone_archive_unsafe"
    redroid = import_(me, sealed({"phonefleet-export.json": b'{"provider": "redroid"}'}))
    assert (redroid.status_code, redroid.json()["error"]) == (409, "personal_phones_unsupported")
    assert "redroid phone's data" in redroid.json()["message"], "another provider's archive, said so"
    # Sound, and sealed with this key: a phone in factory state (an export of one never woken).
    empty = import_(me, sealed({"phonefleet-export.json": b'{"name": "Blank"}'}))
    assert empty.status_code == 201 and empty.json()["name"] == "Blank"
    assert (tmp_path / "personal" / empty.json()["id"]).is_dir()
    assert [p["name"] for p in me.http.get("/api/v1/personal-phones").json()["items"]] == ["Blank"]
    assert not list((tmp_path / "personal").glob(".import-*"))  # no staging left behind
