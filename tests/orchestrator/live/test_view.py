"""Watching a phone: signalling through the real API, video from a real virtual phone, aiortc viewers.

Who may watch: the tenant the phone is leased to (device, task and session routes), and admins a
phone no tenant holds; anyone else gets 404, as for an id that does not exist.
"""

from __future__ import annotations

import uuid

from device_pool.sim import counter
from orchestrator.db import (
    DeviceSession,
    SessionState,
    TaskStatus,
    UserRole,
    make_engine,
    make_sessionmaker,
    utcnow,
)
from tests.aio import run
from tests.orchestrator.conftest import Api
from tests.orchestrator.live.conftest import (
    PHONE,
    VIDEO,
    add_task,
    http_for,
    lease_phone,
    ticking_phone,
    user_of,
)
from tests.orchestrator.live.peer import LiveClient
from tests.processes import SimPhones


def test_a_viewer_gets_the_phone_screen_as_h264_video(live_api: Api, live_phone: SimPhones) -> None:
    caller = live_api.caller()

    async def scenario() -> None:
        await ticking_phone(live_phone.serial(), live_api.settings.webrtc.adb_port)
        async with lease_phone(live_api.db_url, live_phone.serial(), caller.tenant_id) as leased, http_for(
            live_api, caller
        ) as http:
            client = LiveClient()
            try:
                r = await client.connect(http, f"/api/v1/devices/{leased.device_id}/webrtc")
                assert r.status_code == 200, r.text
                body = r.json()
                assert body["type"] == "answer" and "H264/90000" in body["sdp"] and "VP8" not in body["sdp"]
                assert body["device_id"] == str(leased.device_id)
                assert body["screen"] == {"width": PHONE[0], "height": PHONE[1]}
                assert body["video"] == {"width": VIDEO[0], "height": VIDEO[1]}
                assert body["content"] == {"x": 0, "y": 0, "width": VIDEO[0], "height": VIDEO[1]}

                frame = await client.wait_frames(3)
                # Downscaled to max_width, the phone's aspect kept.
                assert (frame.width, frame.height) == VIDEO
                assert frame.width * PHONE[1] == frame.height * PHONE[0]
                # The phone's own pixels: the frame counter it drew reads back after encoding.
                stamp = counter.read(client.luma())
                assert stamp is not None and stamp.seq >= 1

                hello = await client.wait_message("hello")
                assert hello["viewer_id"] == body["viewer_id"]
                assert hello["screen"] == body["screen"] and hello["video"] == body["video"]
                # A lease with no task or session behind it: nobody holds control.
                assert hello["control"] is False and "view only" in hello["reason"]
            finally:
                await client.close()

    run(scenario())


def test_python_viewers_of_a_still_phone_decode_its_picture(live_api: Api, live_phone: SimPhones) -> None:
    """aiortc completes a picture only when the next one arrives; a still phone sends none. The
    stream's repeat completes it: for the viewer whose connection starts the capture (the IDR's
    repeat) and for one that joins it later (its GOP, then a repeat for it alone)."""
    caller = live_api.caller()

    async def scenario() -> None:
        await ticking_phone(live_phone.serial(), live_api.settings.webrtc.adb_port, hz=0)
        async with (
            lease_phone(live_api.db_url, live_phone.serial(), caller.tenant_id) as leased,
            http_for(live_api, caller) as http,
        ):
            first, second = LiveClient(), LiveClient()
            try:
                path = f"/api/v1/devices/{leased.device_id}/webrtc"
                assert (await first.connect(http, path)).status_code == 200
                frame = await first.wait_frames(1)  # a deadline (20 s), not a bound
                assert counter.read(first.luma()) is not None
                assert (await second.connect(http, path)).status_code == 200
                await second.wait_frames(1)
                # The same still picture for both: the counter drawn once.
                assert counter.read(second.luma()).seq == counter.read(first.luma()).seq
                assert (frame.width, frame.height) == VIDEO
            finally:
                await first.close()
                await second.close()

    run(scenario())


def test_another_tenant_cannot_see_the_phone_and_the_operator_only_an_unheld_one(
    live_api: Api, live_phone: SimPhones
) -> None:
    owner, stranger = live_api.caller(), live_api.caller()
    admin = live_api.caller(role=UserRole.OPERATOR)  # of a third tenant: operates the fleet

    async def scenario() -> None:
        await ticking_phone(live_phone.serial(), live_api.settings.webrtc.adb_port)
        task_id = await add_task(live_api.db_url, owner.tenant_id, TaskStatus.WAITING_FOR_USER)
        async with lease_phone(live_api.db_url, live_phone.serial(), owner.tenant_id, task_id=task_id) as leased:
            device_id = leased.device_id
            for caller in (stranger, admin):
                async with http_for(live_api, caller) as http:
                    for path, code in [
                        (f"/api/v1/devices/{device_id}/webrtc", "device_not_found"),
                        (f"/api/v1/tasks/{task_id}/webrtc", "task_not_found"),
                        (f"/api/v1/devices/{uuid.uuid4()}/webrtc", "device_not_found"),
                    ]:
                        client = LiveClient()
                        try:
                            r = await client.connect(http, path)
                            assert r.status_code == 404 and r.json()["error"] == code, r.text
                        finally:
                            await client.close()
        # Released: no tenant holds the phone, so the fleet's operator may watch it, and only watch.
        async with http_for(live_api, admin) as http:
            client = LiveClient()
            try:
                r = await client.connect(http, f"/api/v1/devices/{device_id}/webrtc")
                assert r.status_code == 200, r.text
                await client.wait_frames(2)
                # Never leased to this viewer: the reason says the phone is idle, not that a lease ended.
                hello = await client.wait_message("hello")
                assert hello["control"] is False
                assert hello["reason"] == "view only: the phone is idle (not leased to you)", hello
                ack = await client.request({"type": "tap", "x": 0.5, "y": 0.5})
                assert ack["ok"] is False and ack["error"] == "not_in_control", ack
                assert "idle" in ack["message"], ack
            finally:
                await client.close()
        async with http_for(live_api, stranger) as http:
            client = LiveClient()
            try:
                r = await client.connect(http, f"/api/v1/devices/{device_id}/webrtc")
                assert r.status_code == 404, r.text
            finally:
                await client.close()

    run(scenario())


def test_task_and_session_routes_show_the_phone_they_hold(live_api: Api, live_phone: SimPhones) -> None:
    owner = live_api.caller()
    colleague = live_api.caller(tenant_id=owner.tenant_id)

    async def scenario() -> None:
        await ticking_phone(live_phone.serial(), live_api.settings.webrtc.adb_port)
        # A task that holds no phone (queued) has nothing to show.
        queued = await add_task(live_api.db_url, owner.tenant_id, TaskStatus.QUEUED)
        async with http_for(live_api, owner) as http:
            client = LiveClient()
            try:
                r = await client.connect(http, f"/api/v1/tasks/{queued}/webrtc")
                assert r.status_code == 409 and r.json()["error"] == "no_live_device", r.text
            finally:
                await client.close()

        # A session of the owner's, holding the phone: the owner controls it, a colleague watches.
        session_id = await _add_session(live_api.db_url, owner.tenant_id, await user_of(live_api.db_url, owner))
        async with lease_phone(live_api.db_url, live_phone.serial(), owner.tenant_id, session_id=session_id):
            for caller, in_control in ((owner, True), (colleague, False)):
                async with http_for(live_api, caller) as http:
                    client = LiveClient()
                    try:
                        r = await client.connect(http, f"/api/v1/sessions/{session_id}/webrtc")
                        assert r.status_code == 200, r.text
                        await client.wait_frames(2)
                        hello = await client.wait_message("hello")
                        assert hello["control"] is in_control, hello
                    finally:
                        await client.close()
        # Released: the session holds no phone any more.
        async with http_for(live_api, owner) as http:
            client = LiveClient()
            try:
                r = await client.connect(http, f"/api/v1/sessions/{session_id}/webrtc")
                assert r.status_code == 409 and r.json()["error"] == "no_live_device", r.text
            finally:
                await client.close()

    run(scenario())


def test_offers_that_cannot_work_are_refused_with_4xx(live_api: Api, live_phone: SimPhones) -> None:
    caller = live_api.caller()

    async def scenario() -> None:
        async with lease_phone(live_api.db_url, live_phone.serial(), caller.tenant_id) as leased, http_for(
            live_api, caller
        ) as http:
            path = f"/api/v1/devices/{leased.device_id}/webrtc"
            r = await http.post(path, json={"type": "offer", "sdp": "v=0\r\nnot really\r\nH264/90000\r\n"})
            assert r.status_code == 422 and r.json()["error"] == "invalid_sdp", r.text
            r = await http.post(path, json={"type": "offer", "sdp": "v=0\r\nm=video 9 UDP/TLS/RTP/SAVPF 96\r\n"})
            assert r.status_code == 422 and r.json()["error"] == "invalid_sdp", r.text
            assert "H.264" in r.json()["message"]
            r = await http.post(path, json={"type": "answer", "sdp": "v=0"})
            assert r.status_code == 422 and r.json()["error"] == "validation_error", r.text
            r = await http.post(path, json={"type": "offer", "sdp": "v=0\x00"})
            assert r.status_code == 422, r.text
            r = await http.post(path, headers={"Authorization": ""}, json={"type": "offer", "sdp": "v=0"})
            assert r.status_code == 401, r.text

            # A data-channel-only offer (no video section) is refused too.
            client = LiveClient()
            try:
                client.pc.createDataChannel("control")
                await client.pc.setLocalDescription(await client.pc.createOffer())
                sdp = client.pc.localDescription.sdp + "a=x-note:H264/90000\r\n"
                r = await http.post(path, json={"type": "offer", "sdp": sdp})
                assert r.status_code == 422 and r.json()["error"] == "invalid_sdp", r.text
            finally:
                await client.close()

    run(scenario())


async def _add_session(db_url: str, tenant_id: uuid.UUID, user_id: uuid.UUID) -> uuid.UUID:
    engine = make_engine(db_url)
    try:
        async with make_sessionmaker(engine)() as session, session.begin():
            row = DeviceSession(
                id=uuid.uuid4(), tenant_id=tenant_id, user_id=user_id, state=SessionState.ACTIVE,
                ttl_s=600, created_at=utcnow(),
            )  # fmt: skip
            session.add(row)
            return row.id
    finally:
        await engine.dispose()
