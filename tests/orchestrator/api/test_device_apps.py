"""Device API APK installs and logcat over real HTTP, on a session's virtual phone: an APK built by
Android's own aapt installs into the phone's package manager (checked with adb directly), the log
streams a line for an action taken after it opened, and wrong input gets clear 4xx."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import pytest

from tests.apks import build_apk
from tests.databases import device_serial, migrate_to_head

# Reused, not copied: the providers' SimProvider fixtures (their conftest is not above this folder).
from tests.device_pool.providers.conftest import MakeSimProvider, make_sim_provider  # noqa: F401
from tests.orchestrator.api.conftest import Caller, StartApi
from tests.orchestrator.api.pools import running_pool
from tests.orchestrator.api.test_device_api import PhoneApi, start
from tests.orchestrator.api.test_sessions import events_of
from tests.processes import AdbServer

APK_LIMIT = 64 * 1024


@pytest.fixture
def apps_api(
    start_api: StartApi, pg_url: str, adb_server: AdbServer, make_sim_provider: MakeSimProvider  # noqa: F811
) -> Iterator[PhoneApi]:
    migrate_to_head(pg_url)
    api = start_api(pg_url, webrtc={"adb_port": adb_server.port}, device_api={"apk_max_bytes": APK_LIMIT})
    with ExitStack() as stack:
        pool = stack.enter_context(running_pool(pg_url, make_sim_provider(count=1, max_count=1)))
        yield PhoneApi(api, pool, adb_server)


def events(lines: Iterator[str], until: str, deadline_s: float = 20.0) -> list[dict[str, Any]]:
    """Server-sent events read until one whose data holds ``until`` (or an end event)."""
    seen: list[dict[str, Any]] = []
    kind, end = "message", time.monotonic() + deadline_s
    for line in lines:
        assert time.monotonic() < end, f"no {until!r} within {deadline_s} s: {seen}"
        if line.startswith("event: "):
            kind = line.removeprefix("event: ")
        elif line.startswith("data: "):
            seen.append({"event": kind, **json.loads(line.removeprefix("data: "))})
            if kind == "end" or until in line:
                return seen
            kind = "message"
    return seen


def test_an_apk_installs_and_the_log_follows_an_action(apps_api: PhoneApi, tmp_path: Path) -> None:
    caller = apps_api.api.caller()
    session = start(caller)
    sid, serial = session["id"], device_serial(apps_api.api.db_url, session["device"]["id"])
    apk = build_apk(tmp_path, "com.example.hello")

    r = caller.http.post(f"/api/v1/sessions/{sid}/apps", content=apk,
                         headers={"Content-Type": "application/vnd.android.package-archive"})  # fmt: skip
    assert r.status_code == 200, r.text
    assert r.json() == {"type": "install_apk", "package": "com.example.hello", "bytes": len(apk)}
    assert "package:com.example.hello" in apps_api.shell(serial, "pm list packages -3").split()
    assert "phonefleet-" not in apps_api.shell(serial, "ls /data/local/tmp")  # the upload is cleaned up

    # What the phone logged so far, as JSON; the install is in it, parsed into fields.
    dump = caller.http.get(f"/api/v1/sessions/{sid}/logcat", params={"dump": "true", "filter": "PackageManager:I"})
    assert dump.status_code == 200, dump.text
    [installed] = dump.json()["lines"]
    assert installed["tag"] == "PackageManager" and installed["priority"] == "I"
    assert installed["message"] == "installed com.example.hello versionCode=0"

    # Following: only new lines (tail=0); an app launched after the stream opened shows in it.
    url = f"/api/v1/sessions/{sid}/logcat"
    with caller.http.stream("GET", url, params={"tail": 0, "filter": "ActivityTaskManager:I"}) as stream:
        assert stream.status_code == 200 and stream.headers["content-type"].startswith("text/event-stream")
        assert caller.http.post(f"/api/v1/sessions/{sid}/launch", json={"app": "Settings"}).status_code == 200
        seen = events(stream.iter_lines(), "com.android.settings")
    assert seen[-1]["tag"] == "ActivityTaskManager" and "cmp=com.android.settings/" in seen[-1]["message"]
    assert all(e["tag"] == "ActivityTaskManager" for e in seen)

    actions = [p["action"] for t, p in events_of(apps_api.api.db_url, caller.tenant_id) if t == "session.action"]
    assert [a["type"] for a in actions] == ["install_apk", "logcat", "logcat", "launch"]

    # A stream open when the session ends is closed with a reason.
    with caller.http.stream("GET", url, params={"tail": 0}) as stream:
        assert caller.http.delete(f"/api/v1/sessions/{sid}").status_code == 200
        seen = events(stream.iter_lines(), "a line no phone writes")
    assert seen[-1]["event"] == "end" and "closed" in seen[-1]["reason"], seen[-1]


def test_wrong_apks_filters_and_callers_get_clear_4xx(apps_api: PhoneApi, tmp_path: Path) -> None:
    api = apps_api.api
    caller, stranger = api.caller(), api.caller()
    colleague = api.caller(tenant_id=caller.tenant_id)
    session = start(caller)
    sid, serial = session["id"], device_serial(apps_api.api.db_url, session["device"]["id"])
    apps, log = f"/api/v1/sessions/{sid}/apps", f"/api/v1/sessions/{sid}/logcat"

    def refused(who: Caller, method: str, url: str, status: int, code: str, words: str, **kw: Any) -> None:
        r = who.http.request(method, url, **kw)
        assert r.status_code == status and r.json()["error"] == code, r.text
        assert words in r.json()["message"], r.json()["message"]

    refused(caller, "POST", apps, 422, "apk_rejected", "INSTALL_PARSE_FAILED_NOT_APK", content=b"not a zip")
    own_app = build_apk(tmp_path / "s", "com.android.settings")  # one of the phone's own: refused by the phone
    refused(caller, "POST", apps, 422, "apk_rejected", "INSTALL_FAILED_UPDATE_INCOMPATIBLE", content=own_app)
    refused(caller, "POST", apps, 413, "payload_too_large", "apk_max_bytes", content=b"\x00" * (APK_LIMIT + 1))
    apk = build_apk(tmp_path, "com.example.hello")
    refused(stranger, "POST", f"/api/v1/sessions/{sid}/apps", 404, "session_not_found", "", content=apk)
    refused(colleague, "POST", apps, 403, "permission_denied", "only its user", content=apk)
    refused(caller, "GET", log, 422, "invalid_request", "not a logcat filter spec", params={"filter": "Tag:X"})
    refused(caller, "GET", log, 422, "invalid_request", "not a regular expression", params={"grep": "(", "dump": 1})
    refused(stranger, "GET", log, 404, "session_not_found", "", params={"dump": 1})
    assert colleague.http.get(log, params={"dump": 1}).status_code == 200  # reading is the tenant's
    assert "com.example.hello" not in apps_api.shell(serial, "pm list packages")  # nothing refused got in
