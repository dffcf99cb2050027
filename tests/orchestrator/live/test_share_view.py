"""Watching a phone through a share link: no API key, a real virtual phone, aiortc viewers.

A view link's viewer gets the video and never gets to touch the phone, even while the task waits
for a person (the server refuses its input); a control link's viewer may then. Revoking a link
closes its viewers at once; one that expires is closed at the next lease check, and neither
lets a new viewer in.
"""

from __future__ import annotations

import base64
import datetime as dt
import uuid
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import update

from orchestrator.db import DeviceSession, SessionState, ShareLink, Step, TaskStatus, UserRole, utcnow
from orchestrator.services.sessions import session_holder
from tests.aio import eventually, run
from tests.databases import open_sessions
from tests.orchestrator.conftest import Api
from tests.orchestrator.live.conftest import (
    VIDEO,
    add_task,
    http_for,
    lease_phone,
    set_task_status,
    ticking_phone,
    user_of,
)
from tests.orchestrator.live.peer import LiveClient
from tests.processes import SimPhones
from tests.web.browser import Tab, chromium, expect

# A 2x2 PNG (what a stored screenshot may be: image_response serves PNG as PNG).
_PNG_2X2 = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAIAAAACCAIAAAD91JpzAAAAFklEQVR4nGP8z8DAwMDAxMDAwMDAAAANHQEDasKb6QAAAABJRU5ErkJggg=="
)


async def _share(http: httpx.AsyncClient, task_id: uuid.UUID, mode: str) -> tuple[str, str]:
    created = await http.post("/api/v1/share-links", json={"task_id": str(task_id), "mode": mode})
    assert created.status_code == 201, created.text
    return created.json()["id"], created.json()["url"].rsplit("/", 1)[1]


async def _final_screenshot(api: Api, task_id: uuid.UUID) -> None:
    """The task's step 0 with a 2x2 PNG screenshot, as the worker records one."""
    shot = Path("tasks") / str(task_id) / "step-000.png"
    (api.settings.data_dir / shot).parent.mkdir(parents=True, exist_ok=True)
    (api.settings.data_dir / shot).write_bytes(_PNG_2X2)
    async with open_sessions(api.db_url) as sessions, sessions() as session, session.begin():
        session.add(Step(task_id=task_id, index=0, screenshot=str(shot), current_app="x", thinking="",
                         action_text="finish()", action={"name": "finish"}, result="ok", timings={}))  # fmt: skip


async def _watch(anyone: httpx.AsyncClient, token: str) -> tuple[LiveClient, dict[str, Any]]:
    opened = await anyone.post(f"/share/{token}/open")
    assert opened.status_code == 200, opened.text
    client = LiveClient()
    r = await client.connect(anyone, f"/share/{token}/webrtc", extra={"open_id": opened.json()["open_id"]})
    assert r.status_code == 200, r.text
    return client, opened.json()


def test_a_view_link_watches_without_a_key_and_never_touches_the_phone(live_api: Api, live_phone: SimPhones) -> None:
    admin = live_api.caller(role=UserRole.ADMIN)

    async def scenario() -> None:
        await ticking_phone(live_phone.serial(), live_api.settings.webrtc.adb_port)
        # Waiting for a person: the tenant's own viewers may touch the phone now.
        task_id = await add_task(live_api.db_url, admin.tenant_id, TaskStatus.WAITING_FOR_USER)
        async with (
            lease_phone(live_api.db_url, live_phone.serial(), admin.tenant_id, task_id=task_id),
            http_for(live_api, admin) as http,
            httpx.AsyncClient(base_url=live_api.url, timeout=30) as anyone,
        ):
            view_id, view_token = await _share(http, task_id, "view")
            _control_id, control_token = await _share(http, task_id, "control")
            viewer, opened = await _watch(anyone, view_token)
            controller, _ = await _watch(anyone, control_token)
            try:
                assert opened["mode"] == "view" and opened["ended"] is False
                await viewer.wait_frames(2)
                hello = await viewer.wait_message("hello")
                assert hello["control"] is False and hello["reason"] == "view only: this share link can only watch"
                refused = await viewer.request({"type": "tap", "x": 0.5, "y": 0.5})
                assert refused["ok"] is False and refused["error"] == "not_in_control", refused
                # The control link, on the same task at the same moment, may.
                await controller.wait_frames(1)
                assert (await controller.wait_message("hello"))["control"] is True
                allowed = await controller.request({"type": "key", "key": "home"})
                assert allowed["ok"] is True, allowed

                # Revoked: its viewer is closed at once, the other link's is not.
                revoked = await http.delete(f"/api/v1/share-links/{view_id}")
                assert revoked.status_code == 200, revoked.text
                assert (await viewer.wait_message("bye"))["reason"] == "share link revoked"
                assert not [m for m in controller.messages if m.get("type") == "bye"]
            finally:
                await viewer.close()
                await controller.close()

    run(scenario())


def test_an_expired_links_viewer_is_closed_and_the_link_lets_no_one_in(live_api: Api, live_phone: SimPhones) -> None:
    admin = live_api.caller(role=UserRole.ADMIN)

    async def scenario() -> None:
        await ticking_phone(live_phone.serial(), live_api.settings.webrtc.adb_port)
        task_id = await add_task(live_api.db_url, admin.tenant_id, TaskStatus.RUNNING)
        async with (
            lease_phone(live_api.db_url, live_phone.serial(), admin.tenant_id, task_id=task_id),
            http_for(live_api, admin) as http,
            httpx.AsyncClient(base_url=live_api.url, timeout=30) as anyone,
        ):
            link_id, token = await _share(http, task_id, "view")
            viewer, opened = await _watch(anyone, token)
            try:
                await viewer.wait_frames(1)
                async with open_sessions(live_api.db_url) as sessions, sessions() as session, session.begin():
                    await session.execute(
                        update(ShareLink)
                        .where(ShareLink.id == uuid.UUID(link_id))
                        .values(expires_at=utcnow() - dt.timedelta(seconds=1))
                    )
                bye = await viewer.wait_message("bye")
                assert bye["reason"] == "share link revoked or expired", bye
                again = LiveClient()
                try:
                    r = await again.connect(anyone, f"/share/{token}/webrtc", extra={"open_id": opened["open_id"]})
                    assert r.status_code == 410 and r.json()["error"] == "share_link_expired", r.text
                finally:
                    await again.close()
            finally:
                await viewer.close()

    run(scenario())


def test_the_share_page_plays_the_phone_in_headless_chromium_and_sends_no_input(
    live_api: Api, live_phone: SimPhones, tmp_path: Path
) -> None:
    """/share/{token} with no login and no key: the page opens the link, negotiates with its token
    and the browser decodes frames; a view link's page has no phone buttons and says it only watches.
    When the task ends and its phone goes back, the same page shows the task's final screen."""
    admin = live_api.caller(role=UserRole.ADMIN)

    async def scenario() -> None:
        await ticking_phone(live_phone.serial(), live_api.settings.webrtc.adb_port)
        task_id = await add_task(live_api.db_url, admin.tenant_id, TaskStatus.WAITING_FOR_USER)
        await _final_screenshot(live_api, task_id)
        async with http_for(live_api, admin) as http, chromium() as browser:
            link_id, token = await _share(http, task_id, "view")
            tab = await Tab.open(browser, live_api.url, tmp_path, width=420, height=860)
            async with lease_phone(live_api.db_url, live_phone.serial(), admin.tenant_id, task_id=task_id):
                await tab.page.goto(f"{live_api.url}/share/{token}")
                stats = await tab.wait_video_playing()
                assert stats["framesDecoded"] > 0 and (stats["width"], stats["height"]) == VIDEO, stats
                await expect(tab.page.locator("#status")).to_have_text("view only: this share link can only watch")
                assert await tab.page.locator("#keys").is_hidden()
                await set_task_status(live_api.db_url, task_id, TaskStatus.SUCCEEDED)
            # The phone went back: the page finds the task ended and shows its last screen.
            await expect(tab.page.locator("#final")).to_be_visible(timeout=30_000)
            await expect(tab.page.locator("#status")).to_have_text("This task has ended (succeeded).")
            assert await tab.page.evaluate("() => document.getElementById('final').naturalWidth") == 2
            tab.assert_no_errors()
            read = await http.get(f"/api/v1/share-links/{link_id}")
            assert read.json()["uses"] == 1 and read.json()["opens"][0]["client"] == "127.0.0.1", read.text

    run(scenario())


def test_a_sessions_control_link_controls_it_and_its_viewer_keeps_the_session_alive(
    live_api: Api, live_phone: SimPhones
) -> None:
    """A session shared by its user with a control link: the viewer may touch the phone, and its
    messages count as the session's activity (its idle timeout counts from them)."""
    owner = live_api.caller()

    async def scenario() -> None:
        await ticking_phone(live_phone.serial(), live_api.settings.webrtc.adb_port)
        user_id = await user_of(live_api.db_url, owner)
        session_id = uuid.uuid4()
        async with open_sessions(live_api.db_url) as sessions, sessions() as session, session.begin():
            session.add(DeviceSession(id=session_id, tenant_id=owner.tenant_id, user_id=user_id, ttl_s=600,
                                      state=SessionState.ACTIVE, created_at=utcnow(),
                                      expires_at=utcnow() + dt.timedelta(seconds=60)))  # fmt: skip
        async with (
            lease_phone(live_api.db_url, live_phone.serial(), owner.tenant_id, session_id=session_id,
                        holder=session_holder(session_id)) as leased,
            http_for(live_api, owner) as http,
            httpx.AsyncClient(base_url=live_api.url, timeout=30) as anyone,
        ):  # fmt: skip
            await _set_session(live_api.db_url, session_id, device_id=leased.device_id)
            created = await http.post("/api/v1/share-links", json={"session_id": str(session_id), "mode": "control"})
            assert created.status_code == 201, created.text
            viewer, opened = await _watch(anyone, created.json()["url"].rsplit("/", 1)[1])
            try:
                assert opened["kind"] == "session" and opened["ended"] is False
                assert (await viewer.wait_message("hello"))["control"] is True
                assert (await viewer.request({"type": "key", "key": "home"}))["ok"] is True
                # Its activity moved expires_at ttl_s on (from 60 s left), as a keepalive would.
                later = utcnow() + dt.timedelta(seconds=300)
                await eventually(lambda: _expires_after(live_api.db_url, session_id, later), what="session extended")
            finally:
                await viewer.close()

    run(scenario())


async def _set_session(db_url: str, session_id: uuid.UUID, **values: Any) -> None:
    async with open_sessions(db_url) as sessions, sessions() as session, session.begin():
        await session.execute(update(DeviceSession).where(DeviceSession.id == session_id).values(**values))


async def _expires_after(db_url: str, session_id: uuid.UUID, moment: dt.datetime) -> bool:
    async with open_sessions(db_url) as sessions, sessions() as session:
        row = await session.get(DeviceSession, session_id)
        return row is not None and row.expires_at is not None and row.expires_at > moment
