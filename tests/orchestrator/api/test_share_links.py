"""Share links' API: who may make one, what a maker and its tenant see, and when a token stops
working (revoked: 404; expired or used up: 410). The live view through a link is tested in
tests/orchestrator/live/test_share_view.py, the page in a browser in tests/web/test_share_page.py."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import select, update

from orchestrator.db import AuditEntry, ShareLink, Step, Task, TaskStatus, UserRole, utcnow
from orchestrator.encryption import SCREENSHOT_MAGIC
from orchestrator.live.recorder import recording_file
from orchestrator.settings import Settings
from tests.aio import run
from tests.databases import open_sessions
from tests.orchestrator.api.conftest import Api, Caller, StartApi

LINKS = "/api/v1/share-links"


def _task(caller: Caller) -> str:
    r = caller.http.post("/api/v1/tasks", json={"instruction": "share me"})
    assert r.status_code == 202, r.text
    return r.json()["id"]


def _token(created: httpx.Response) -> str:
    assert created.status_code == 201, created.text
    return created.json()["url"].rsplit("/share/", 1)[1]


def _anyone(api: Api) -> httpx.Client:
    return api.client()  # no key at all


async def _expire(db_url: str, link_id: str) -> None:
    async with open_sessions(db_url) as sessions, sessions() as session, session.begin():
        await session.execute(
            update(ShareLink)
            .where(ShareLink.id == uuid.UUID(link_id))
            .values(expires_at=utcnow() - dt.timedelta(seconds=1))
        )


async def _audit(db_url: str, link_id: str) -> list[str]:
    async with open_sessions(db_url) as sessions, sessions() as session:
        rows = await session.scalars(
            select(AuditEntry.action).where(AuditEntry.target == f"share_link:{link_id}").order_by(AuditEntry.created_at)
        )
        return list(rows)


def test_a_task_owner_shares_it_and_the_link_works_without_a_key_until_revoked(api: Api) -> None:
    owner = api.caller()
    colleague = api.caller(tenant_id=owner.tenant_id)
    admin = api.caller(role=UserRole.ADMIN, tenant_id=owner.tenant_id)
    stranger = api.caller(role=UserRole.ADMIN)
    task_id = _task(owner)

    created = owner.http.post(LINKS, json={"task_id": task_id, "mode": "view", "expires_in_s": 600})
    token = _token(created)
    link = created.json()
    assert token.startswith("pfs_") and len(token) > 40
    assert link["kind"] == "task" and link["target_id"] == task_id and link["mode"] == "view"
    assert link["uses"] == 0 and link["max_uses"] is None and link["revoked_at"] is None
    # The token is stored hashed only.
    assert token not in owner.http.get(f"{LINKS}/{link['id']}").text

    # Another member may not share the owner's task; the tenant's admin may; another tenant sees no task.
    refused = colleague.http.post(LINKS, json={"task_id": task_id})
    assert refused.status_code == 403 and refused.json()["error"] == "permission_denied", refused.text
    assert admin.http.post(LINKS, json={"task_id": task_id, "mode": "control"}).status_code == 201
    hidden = stranger.http.post(LINKS, json={"task_id": task_id})
    assert hidden.status_code == 404 and hidden.json()["error"] == "task_not_found", hidden.text

    # The page and its opening need no key; the opening is recorded (when, from where).
    anyone = _anyone(api)
    page = anyone.get(f"/share/{token}")
    assert page.status_code == 200 and "share.js" in page.text
    assert "frame-ancestors 'self'" in page.headers["content-security-policy"]
    assert page.headers["referrer-policy"] == "no-referrer"
    opened = anyone.post(f"/share/{token}/open", headers={"User-Agent": "share-test"})
    assert opened.status_code == 200, opened.text
    assert opened.json()["mode"] == "view" and opened.json()["ended"] is False and opened.json()["open_id"]
    read = owner.http.get(f"{LINKS}/{link['id']}").json()
    assert read["uses"] == 1
    assert [(o["client"], o["user_agent"]) for o in read["opens"]] == [("127.0.0.1", "share-test")]

    # Lists: the owner its own, the admin the tenant's, the stranger nothing; one link: 404 to others.
    assert [x["id"] for x in owner.http.get(LINKS).json()] == [link["id"]]
    assert link["id"] in {x["id"] for x in admin.http.get(LINKS).json()} and len(admin.http.get(LINKS).json()) == 2
    assert stranger.http.get(LINKS).json() == []
    for verb in ("get", "delete"):
        other = getattr(stranger.http, verb)(f"{LINKS}/{link['id']}")
        assert other.status_code == 404 and other.json()["error"] == "share_link_not_found", other.text

    # Revoked: the token is as unknown as one that never existed, at once.
    revoked = owner.http.delete(f"{LINKS}/{link['id']}")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None, revoked.text
    assert owner.http.delete(f"{LINKS}/{link['id']}").status_code == 200  # idempotent
    for path in (f"/share/{token}/open", f"/share/{token}/webrtc"):
        body = {"type": "offer", "sdp": "v=0", "open_id": opened.json()["open_id"]}
        gone = anyone.post(path, json=body)
        assert gone.status_code == 404 and gone.json()["error"] == "share_link_not_found", gone.text
    assert anyone.post("/share/pfs_nosuchtoken/open").status_code == 404
    assert run(_audit(api.db_url, link["id"])) == ["share_link.create", "share_link.revoke"]


def test_expiry_and_max_uses_end_a_link_with_410(any_db_api: Api) -> None:
    api = any_db_api  # PostgreSQL, then SQLite: the counted UPDATE … RETURNING on both
    owner = api.caller()
    task_id = _task(owner)
    anyone = _anyone(api)

    once = _token(owner.http.post(LINKS, json={"task_id": task_id, "max_uses": 1}))
    first = anyone.post(f"/share/{once}/open")
    assert first.status_code == 200, first.text
    second = anyone.post(f"/share/{once}/open")
    assert second.status_code == 410 and second.json()["error"] == "share_link_expired", second.text
    # The page that used the one use still watches (its open id); a made-up open id does not.
    offer = {"type": "offer", "sdp": "v=0"}
    stolen = anyone.post(f"/share/{once}/webrtc", json={**offer, "open_id": str(uuid.uuid4())})
    assert stolen.status_code == 404 and stolen.json()["error"] == "share_link_not_found", stolen.text

    created = owner.http.post(LINKS, json={"task_id": task_id})
    token = _token(created)
    assert anyone.post(f"/share/{token}/open").status_code == 200
    run(_expire(api.db_url, created.json()["id"]))
    for path in (f"/share/{token}/open", f"/share/{token}/screenshot"):
        expired = anyone.request("GET" if path.endswith("screenshot") else "POST", path)
        assert expired.status_code == 410 and expired.json()["error"] == "share_link_expired", expired.text


def test_a_link_names_exactly_one_target_and_devices_are_the_operators(api: Api) -> None:
    admin = api.caller(role=UserRole.ADMIN)
    operator = api.caller(role=UserRole.OPERATOR)
    task_id = _task(admin)
    for body in ({"mode": "view"}, {"task_id": task_id, "session_id": str(uuid.uuid4())}):
        r = admin.http.post(LINKS, json=body)
        assert r.status_code == 422 and "exactly one of task_id, session_id, device_id" in r.text, r.text
    bad_mode = admin.http.post(LINKS, json={"task_id": task_id, "mode": "edit"})
    assert bad_mode.status_code == 422, bad_mode.text
    too_long = admin.http.post(LINKS, json={"task_id": task_id, "expires_in_s": 10**9})
    assert too_long.status_code == 422 and "max_expires_in_s" in too_long.text, too_long.text
    device = admin.http.post(LINKS, json={"device_id": str(uuid.uuid4())})
    assert device.status_code == 403 and "operator" in device.json()["message"], device.text
    missing = operator.http.post(LINKS, json={"device_id": str(uuid.uuid4())})
    assert missing.status_code == 404 and missing.json()["error"] == "device_not_found", missing.text
    session = admin.http.post(LINKS, json={"session_id": str(uuid.uuid4())})
    assert session.status_code == 404 and session.json()["error"] == "session_not_found", session.text


def test_the_share_page_may_be_framed_by_the_configured_origins_only(start_api: StartApi, migrated_pg_url: str) -> None:
    api = start_api(migrated_pg_url, share_links={"frame_ancestors": ["https://intranet.example.com"]})
    page = api.client().get("/share/pfs_anything")
    policy = page.headers["content-security-policy"]
    assert "frame-ancestors 'self' https://intranet.example.com" in policy, policy
    # The dashboard itself is never framed.
    assert "frame-ancestors 'none'" in api.client().get("/").headers["content-security-policy"]


def test_a_tasks_link_outlives_the_task_and_shows_its_final_screen(api: Api) -> None:
    owner = api.caller()
    task_id = _task(owner)
    jpeg = b"\xff\xd8\xff\xe0" + b"final screen" * 4 + b"\xff\xd9"
    shot = Path("tasks") / task_id / "step-001.jpg"
    (api.settings.data_dir / shot).parent.mkdir(parents=True, exist_ok=True)
    (api.settings.data_dir / shot).write_bytes(jpeg)

    async def finish() -> None:
        async with open_sessions(api.db_url) as sessions, sessions() as session, session.begin():
            for index, screenshot in ((0, None), (1, str(shot))):
                session.add(Step(task_id=uuid.UUID(task_id), index=index, screenshot=screenshot, current_app="x",
                                 thinking="", action_text="finish()", action={"name": "finish"}, result="ok",
                                 timings={}))  # fmt: skip
            await session.execute(update(Task).where(Task.id == uuid.UUID(task_id)).values(status=TaskStatus.SUCCEEDED))

    token = _token(owner.http.post(LINKS, json={"task_id": task_id}))
    run(finish())
    anyone = _anyone(api)
    opened = anyone.post(f"/share/{token}/open")
    assert opened.status_code == 200, opened.text
    state = opened.json()
    assert state["ended"] is True and state["status"] == "succeeded", state
    assert state["screenshot"] == f"/share/{token}/screenshot"
    assert state["recording"] is None  # no recording made (or no recordings module)
    final = anyone.get(state["screenshot"])
    assert final.status_code == 200 and final.content == jpeg and final.headers["content-type"] == "image/jpeg"
    none = anyone.get(f"/share/{token}/recording")
    assert none.status_code == 404, none.text
    # A recording once there is one (ranges answered), but never a sealed one: only the tenant's
    # admins and the task's owner play those, and a link's holder is neither.
    video = recording_file(api.settings.data_dir, "task", uuid.UUID(task_id))
    video.write_bytes(b"\x00\x00\x00\x18ftypisom" + bytes(range(256)))
    part = anyone.get(f"/share/{token}/recording", headers={"Range": "bytes=4-11"})
    assert part.status_code == 206 and part.content == b"ftypisom", part.text
    shown = anyone.get(f"/share/{token}/state", params={"open_id": state["open_id"]}).json()
    assert shown["recording"] == f"/share/{token}/recording", shown
    video.write_bytes(SCREENSHOT_MAGIC + b"sealed")
    assert anyone.get(f"/share/{token}/recording").status_code == 404
    # The opened page asks again without counting a use; only with its own open id.
    again = anyone.get(f"/share/{token}/state", params={"open_id": state["open_id"]})
    assert again.status_code == 200 and again.json()["ended"] is True, again.text
    stranger = anyone.get(f"/share/{token}/state", params={"open_id": str(uuid.uuid4())})
    assert stranger.status_code == 404, stranger.text
    assert owner.http.get(LINKS).json()[0]["uses"] == 1


def test_frame_ancestors_must_be_origins() -> None:
    for bad in ("*", "https://example.com/path", "https://a.example.com; script-src *", "javascript:x"):
        with pytest.raises(ValidationError, match="not origins"):
            Settings(share_links={"frame_ancestors": [bad]})
    ok = Settings(share_links={"frame_ancestors": ["https://intranet.example.com:8443", "https://*.example.org"]})
    assert len(ok.share_links.frame_ancestors) == 2
