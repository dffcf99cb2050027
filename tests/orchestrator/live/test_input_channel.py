"""Input on the ``control`` data channel: it reaches the phone only from the user who holds control.

Each check reads the phone back through the driver (settings, the view tree, the app in front), so
"reached the phone" and "never reached it" are what the phone says, not what the API answered.
"""

from __future__ import annotations

import json

from device_pool.driver import AdbDevice
from orchestrator.db import TaskStatus
from tests.aio import run
from tests.orchestrator.conftest import Api
from tests.orchestrator.live.conftest import (
    PHONE,
    add_task,
    http_for,
    lease_phone,
    set_task_status,
    ticking_phone,
    user_of,
)
from tests.orchestrator.live.peer import LiveClient
from tests.processes import SimPhones
from tests.ui import find, wait_for_foreground, wait_for_node


def _norm(point: tuple[int, int]) -> dict[str, float]:
    return {"x": point[0] / PHONE[0], "y": point[1] / PHONE[1]}


async def _wifi(phone: AdbDevice) -> str:
    return (await phone.shell("settings get global wifi_on", check=True)).stdout.strip()


def test_input_from_the_user_in_control_reaches_the_phone(live_api: Api, live_phone: SimPhones) -> None:
    caller = live_api.caller()

    async def scenario() -> None:
        phone = await ticking_phone(live_phone.serial(), live_api.settings.webrtc.adb_port)
        user = await user_of(live_api.db_url, caller)
        task_id = await add_task(live_api.db_url, caller.tenant_id, TaskStatus.USER_CONTROL, took_over_by=user)
        async with lease_phone(live_api.db_url, live_phone.serial(), caller.tenant_id, task_id=task_id), http_for(
            live_api, caller
        ) as http:
            await phone.launch("Settings")
            switch = await wait_for_node(phone, rid="switch_wifi")
            before = await _wifi(phone)
            client = LiveClient()
            try:
                r = await client.connect(http, f"/api/v1/tasks/{task_id}/webrtc")
                assert r.status_code == 200, r.text
                assert (await client.wait_message("hello"))["control"] is True

                ack = await client.request({"type": "tap", **_norm(switch.center)})
                assert ack == {"type": "ack", "id": ack["id"], "ok": True, "error": None, "message": None}
                assert await _wifi(phone) != before  # the tap toggled Wi-Fi on the phone

                assert (await client.request({"type": "key", "key": "home"}))["ok"] is True
                await wait_for_foreground(phone, "com.android.launcher3")

                # Text goes into the focused field, added to what is there.
                await phone.launch("com.phonefleet.notes")
                fab = await wait_for_node(phone, rid="fab_new")
                assert (await client.request({"type": "tap", **_norm(fab.center)}))["ok"] is True
                title = await wait_for_node(phone, rid="note_title")
                assert (await client.request({"type": "tap", **_norm(title.center)}))["ok"] is True
                for part in ("live ", "view"):
                    ack = await client.request({"type": "text", "text": part})
                    assert ack["ok"] is True, ack
                assert find(await phone.ui_dump(), rid="note_title").text == "live view"

                for gesture in (
                    {"type": "swipe", "x1": 0.5, "y1": 0.6, "x2": 0.5, "y2": 0.4, "duration_ms": 100},
                    {"type": "double_tap", "x": 0.1, "y": 0.1},
                    {"type": "long_press", "x": 0.1, "y": 0.1, "duration_ms": 150},
                    {"type": "key", "key": "back"},
                ):
                    assert (await client.request(gesture))["ok"] is True, gesture
            finally:
                await client.close()

    run(scenario())


def test_input_without_control_is_refused_and_never_reaches_the_phone(live_api: Api, live_phone: SimPhones) -> None:
    caller = live_api.caller()
    colleague = live_api.caller(tenant_id=caller.tenant_id)

    async def scenario() -> None:
        phone = await ticking_phone(live_phone.serial(), live_api.settings.webrtc.adb_port)
        other = await user_of(live_api.db_url, colleague)
        task_id = await add_task(live_api.db_url, caller.tenant_id, TaskStatus.RUNNING, took_over_by=other)
        async with lease_phone(live_api.db_url, live_phone.serial(), caller.tenant_id, task_id=task_id), http_for(
            live_api, caller
        ) as http:
            await phone.launch("Settings")
            switch = await wait_for_node(phone, rid="switch_wifi")
            before = await _wifi(phone)
            client = LiveClient()
            try:
                r = await client.connect(http, f"/api/v1/tasks/{task_id}/webrtc")
                assert r.status_code == 200, r.text
                assert (await client.wait_message("hello"))["control"] is False

                # The agent drives a running task: everyone watches.
                ack = await client.request({"type": "tap", **_norm(switch.center)})
                assert ack["ok"] is False and ack["error"] == "not_in_control", ack
                assert "agent controls" in ack["message"]
                # The colleague took over: still not this user.
                await set_task_status(live_api.db_url, task_id, TaskStatus.USER_CONTROL)
                ack = await client.request({"type": "tap", **_norm(switch.center)})
                assert ack["error"] == "not_in_control" and "another user" in ack["message"], ack
                assert (await client.request({"type": "key", "key": "home"}))["error"] == "not_in_control"
                assert await _wifi(phone) == before
                assert (await phone.foreground())[0] == "com.android.settings"

                # The agent asks for a person: any user of the tenant may act, and is told so.
                await set_task_status(live_api.db_url, task_id, TaskStatus.WAITING_FOR_USER)
                told = await client.wait_message("control")
                assert told["control"] is True
                assert (await client.request({"type": "tap", **_norm(switch.center)}))["ok"] is True
                assert await _wifi(phone) != before
            finally:
                await client.close()

    run(scenario())


def test_malformed_messages_get_error_acks(live_api: Api, live_phone: SimPhones) -> None:
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
                await client.wait_message("hello")
                for bad in (
                    {"type": "tap", "x": 1.5, "y": 0.5},
                    {"type": "tap", "x": 0.5},
                    {"type": "teleport"},
                    {"type": "key", "key": "power"},
                    {"type": "text", "text": ""},
                    {"type": "swipe", "x1": 0, "y1": 0, "x2": 1, "y2": 1, "duration_ms": -5},
                    {"type": "tap", "x": 0.5, "y": 0.5, "extra": 1},
                ):
                    ack = await client.request(bad)
                    assert ack["ok"] is False and ack["error"] == "invalid_message", (bad, ack)
                    assert ack["message"]
                # Not JSON at all: the ack cannot carry an id.
                client.channel.send("{not json")
                bad = await client.wait_message("ack")
                assert bad["error"] == "invalid_message" and bad["id"] is None
                client.channel.send(json.dumps({"type": "text", "text": "x" * 20_000, "id": 7}))
                assert (await client.request({"type": "ping"}))["ok"] is True  # still served, in order
                assert [m for m in client.messages if m.get("type") == "ack"][1]["error"] == "invalid_message"
            finally:
                await client.close()

    run(scenario())
