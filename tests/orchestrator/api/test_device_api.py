"""The device API over real HTTP: a session's virtual phone in a running pool, driven through the API
process's adb server (the pool's), its state read back with adb; and every way a caller gets it wrong.
"""

from __future__ import annotations

import io
import uuid
from collections.abc import Iterator
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from device_pool.driver import AdbDevice
from orchestrator.db import SessionState
from tests.aio import run
from tests.databases import device_serial, migrate_to_head

# Reused, not copied: the providers' SimProvider fixtures (their conftest is not above this folder).
from tests.device_pool.providers.conftest import MakeSimProvider, make_sim_provider  # noqa: F401
from tests.orchestrator.api.conftest import Api, Caller, StartApi
from tests.orchestrator.api.pools import RunningPool, running_pool
from tests.orchestrator.api.test_sessions import events_of
from tests.processes import AdbServer


@dataclass
class PhoneApi:
    """The API on a database of its own, with a pool of virtual phones it reaches through ``adb``."""

    api: Api
    pool: RunningPool
    adb: AdbServer

    def phone(self, serial: str) -> AdbDevice:
        return AdbDevice(serial, adb_port=self.adb.port)

    def shell(self, serial: str, command: str) -> str:
        async def go() -> str:
            phone = self.phone(serial)
            await phone.connect(timeout=30)
            return (await phone.shell(command, check=True)).stdout.strip()

        return run(go())


@pytest.fixture
def phone_api(
    start_api: StartApi, pg_url: str, adb_server: AdbServer, make_sim_provider: MakeSimProvider,  # noqa: F811
    tmp_path: Path,
) -> Iterator[PhoneApi]:
    """One 720x1600 virtual phone in a running pool (which can run personal phones), and the API
    (its adb server the pool's)."""
    migrate_to_head(pg_url)
    api = start_api(pg_url, webrtc={"adb_port": adb_server.port})
    with ExitStack() as stack:
        provider = make_sim_provider(count=1, max_count=1, personal_root=tmp_path / "personal")
        pool = stack.enter_context(running_pool(pg_url, provider))
        yield PhoneApi(api, pool, adb_server)


def start(caller: Caller, **body: Any) -> dict[str, Any]:
    r = caller.http.post("/api/v1/sessions", json={"ttl_s": 300, **body})
    assert r.status_code == 201, r.text
    return r.json()


def element(tree: dict[str, Any], **match: Any) -> dict[str, Any]:
    found = [e for e in tree["elements"] if all(e.get(k) == v for k, v in match.items())]
    assert len(found) == 1, (match, tree["elements"])
    return found[0]


def test_a_session_phone_is_seen_read_and_driven_through_the_api(phone_api: PhoneApi) -> None:
    caller = phone_api.api.caller()
    session = start(caller)
    sid, serial = session["id"], device_serial(phone_api.api.db_url, session["device"]["id"])
    base = f"/api/v1/sessions/{sid}"

    png = caller.http.get(f"{base}/screenshot")
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    assert (png.headers["x-screen-width"], png.headers["x-screen-height"]) == ("720", "1600")
    assert Image.open(io.BytesIO(png.content)).size == (720, 1600)
    jpeg = caller.http.get(f"{base}/screenshot", params={"format": "jpeg", "scale": 0.5, "quality": 60})
    assert jpeg.status_code == 200 and jpeg.headers["content-type"] == "image/jpeg"
    assert Image.open(io.BytesIO(jpeg.content)).format == "JPEG"
    assert Image.open(io.BytesIO(jpeg.content)).size == (360, 800)
    fitted = caller.http.get(f"{base}/screenshot", params={"format": "jpeg", "scale": 0.75, "max_side": 400})
    assert Image.open(io.BytesIO(fitted.content)).size == (180, 400)  # the smaller of the two scales
    assert fitted.headers["x-screen-height"] == "1600"

    home = caller.http.get(f"{base}/ui").json()
    assert home["screen"] == {"width": 720, "height": 1600}
    assert home["package"] == "com.android.launcher3"
    settings_icon = element(home, text="Settings")
    xml = caller.http.get(f"{base}/ui", params={"format": "xml"})
    assert xml.headers["content-type"].startswith("application/xml") and "<hierarchy" in xml.text

    tapped = caller.http.post(f"{base}/input", json={"type": "tap", "element_id": settings_icon["id"]})
    assert tapped.status_code == 200, tapped.text
    left, top, right, bottom = settings_icon["bounds"]
    assert tapped.json()["x"] == (left + right) // 2 and tapped.json()["y"] == (top + bottom) // 2

    settings = caller.http.get(f"{base}/ui").json()
    assert settings["package"] == "com.android.settings"
    wifi = element(settings, resource_id="com.android.settings:id/switch_wifi")
    assert wifi["checked"] is True and phone_api.shell(serial, "settings get global wifi_on") == "1"
    toggled = caller.http.post(f"{base}/input", json={"type": "tap", "element_id": wifi["id"]})
    assert toggled.status_code == 200, toggled.text
    assert phone_api.shell(serial, "settings get global wifi_on") == "0"
    # The switch keeps its id as it turns off.
    assert element(caller.http.get(f"{base}/ui").json(), id=wifi["id"])["checked"] is False

    back = caller.http.post(f"{base}/input", json={"type": "key", "key": "HOME"})
    assert back.status_code == 200 and back.json() == {"type": "key", "key": "home", "settled": True}
    launched = caller.http.post(f"{base}/launch", json={"app": "Notes"})
    assert launched.status_code == 200, launched.text
    assert launched.json()["package"] == caller.http.get(f"{base}/ui").json()["package"]
    swiped = caller.http.post(f"{base}/input", json={"type": "swipe", "direction": "up"})
    assert swiped.status_code == 200 and swiped.json()["from"] == [360, 1120]
    assert swiped.json()["to"] == [360, 480]

    actions = [p["action"] for t, p in events_of(phone_api.api.db_url, caller.tenant_id) if t == "session.action"]
    assert [a["type"] for a in actions] == ["tap", "tap", "key", "launch", "swipe"]
    assert actions[0]["element"]["id"] == settings_icon["id"]
    assert all(p["session_id"] == sid for t, p in events_of(phone_api.api.db_url, caller.tenant_id)
               if t == "session.action")  # fmt: skip


def test_typed_text_reaches_the_field_and_the_timeline_keeps_only_its_length(phone_api: PhoneApi) -> None:
    caller = phone_api.api.caller()
    session = start(caller)
    base, serial = f"/api/v1/sessions/{session['id']}", device_serial(phone_api.api.db_url, session["device"]["id"])
    assert caller.http.post(f"{base}/launch", json={"app": "Notes"}).status_code == 200

    def tap(rid: str) -> None:
        target = element(caller.http.get(f"{base}/ui").json(), resource_id=f"com.phonefleet.notes:id/{rid}")
        r = caller.http.post(f"{base}/input", json={"type": "tap", "element_id": target["id"]})
        assert r.status_code == 200, r.text

    tap("fab_new")
    tap("note_title")
    typed = caller.http.post(f"{base}/input", json={"type": "text", "text": "Grace"})
    assert typed.status_code == 200, typed.text
    title = element(caller.http.get(f"{base}/ui").json(), resource_id="com.phonefleet.notes:id/note_title")
    assert title["text"] == "Grace" and title["focused"] is True
    tap("save_button")
    assert "Grace.txt" in phone_api.shell(serial, "ls /sdcard/Notes")
    [recorded] = [p["action"] for t, p in events_of(phone_api.api.db_url, caller.tenant_id)
                  if t == "session.action" and p["action"]["type"] == "text"]  # fmt: skip
    assert recorded == {"type": "text", "chars": 5, "clear": False, "settled": True}


def test_wrong_calls_get_clear_4xx_and_never_reach_the_phone(phone_api: PhoneApi) -> None:
    api = phone_api.api
    caller, stranger = api.caller(), api.caller()
    colleague = api.caller(tenant_id=caller.tenant_id)
    session = start(caller)
    sid = session["id"]
    base = f"/api/v1/sessions/{sid}"

    # Another tenant's session is not found, whatever the call; so is an unknown one.
    for method, path, body in (
        ("GET", "screenshot", None), ("GET", "ui", None),
        ("POST", "input", {"type": "key", "key": "back"}), ("POST", "launch", {"app": "Settings"}),
    ):  # fmt: skip
        r = stranger.http.request(method, f"{base}/{path}", json=body)
        assert r.status_code == 404 and r.json()["error"] == "session_not_found", r.text
    unknown = caller.http.get(f"/api/v1/sessions/{uuid.uuid4()}/ui")
    assert unknown.status_code == 404 and unknown.json()["error"] == "session_not_found"

    def refused(body: dict[str, Any], status: int, code: str, words: str) -> None:
        r = caller.http.post(f"{base}/input", json=body)
        assert r.status_code == status and r.json()["error"] == code, r.text
        assert words in r.json()["message"], r.json()["message"]

    refused({"type": "tap", "element_id": "e000000"}, 404, "element_not_found", "read the UI tree again")
    refused({"type": "tap", "element_id": "Settings"}, 422, "validation_error", "element_id")
    refused({"type": "tap", "x": 10, "y": 10, "element_id": "e000000"}, 422, "validation_error", "not both")
    refused({"type": "tap", "x": 10}, 422, "validation_error", "x and y")
    refused({"type": "tap", "x": 720, "y": 10}, 422, "input_rejected", "720x1600")
    refused({"type": "swipe", "direction": "sideways"}, 422, "validation_error", "direction")
    refused({"type": "key", "key": "launch_missiles"}, 422, "validation_error", "unknown key")
    refused({"type": "wave"}, 422, "validation_error", "type")
    bad_app = caller.http.post(f"{base}/launch", json={"app": "No Such App"})
    assert bad_app.status_code == 422 and bad_app.json()["error"] == "input_rejected", bad_app.text
    bad_scale = caller.http.get(f"{base}/screenshot", params={"scale": 2})
    assert bad_scale.status_code == 422 and "scale" in bad_scale.json()["message"]

    # A colleague may look at the phone, but only the session's user touches it.
    assert colleague.http.get(f"{base}/ui").status_code == 200
    touched = colleague.http.post(f"{base}/input", json={"type": "key", "key": "back"})
    assert touched.status_code == 403 and touched.json()["error"] == "permission_denied"

    actions = [t for t, _ in events_of(api.db_url, caller.tenant_id) if t == "session.action"]
    assert actions == []  # nothing refused was recorded (nor sent)

    assert caller.http.delete(base).json()["state"] == SessionState.CLOSED.value
    ended = caller.http.get(f"{base}/screenshot")
    assert ended.status_code == 409 and ended.json()["error"] == "no_live_device"
    assert "closed" in ended.json()["message"]


def test_a_session_on_a_personal_phone_launches_only_its_allowed_apps(phone_api: PhoneApi) -> None:
    """An MCP agent or SDK program drives a session through the device API: on a personal phone with
    ``allowed_apps`` its launches are held to the list, as a task's are (docs/security.md)."""
    caller = phone_api.api.caller()
    made = caller.http.post("/api/v1/personal-phones", json={"name": "P", "allowed_apps": ["com.android.settings"]})
    assert made.status_code == 201, made.text
    session = start(caller, personal_phone_id=made.json()["id"], wait_s=30)
    base = f"/api/v1/sessions/{session['id']}"
    for app, words in (
        ("Contacts", "com.android.contacts on this personal phone: it is not in its allowed_apps (com.android.settings)"),
        ("com.android.contacts/.Main", "it is not in its allowed_apps"),
        ("No Such App", "launch it by its package"),  # found only by tapping an icon: too late to refuse
    ):
        refused = caller.http.post(f"{base}/launch", json={"app": app})
        assert refused.status_code == 403 and refused.json()["error"] == "permission_denied", refused.text
        assert words in refused.json()["message"], refused.json()["message"]
    assert caller.http.get(f"{base}/ui").json()["package"] != "com.android.contacts"  # never opened
    launched = caller.http.post(f"{base}/launch", json={"app": "Settings"})
    assert launched.status_code == 200 and launched.json()["package"] == "com.android.settings", launched.text
    launches = [p["action"]["app"] for t, p in events_of(phone_api.api.db_url, caller.tenant_id)
                if t == "session.action" and p["action"]["type"] == "launch"]  # fmt: skip
    assert launches == ["Settings"]  # a refused launch is not on the timeline
