"""The async client against the API served for real, with a pool holding one virtual phone: a
session's whole life and every device call, the phone's state read back with adb; refusals as
``PhoneFleetAPIError`` with the API's codes."""

from __future__ import annotations

import asyncio
import io

import pytest
from PIL import Image

from orchestrator.async_client import AsyncPhoneFleetClient
from orchestrator.client import PhoneFleetAPIError
from tests.aio import run
from tests.databases import read_device_serial

# Reused, not copied: the device API's fixture (an API with a pool of one virtual phone).
from tests.orchestrator.api.test_device_api import PhoneApi, make_sim_provider, phone_api  # noqa: F401


def test_a_session_and_its_phone_through_the_async_client(phone_api: PhoneApi) -> None:  # noqa: F811
    caller, stranger = phone_api.api.caller(), phone_api.api.caller()

    async def scenario() -> None:
        async with (
            AsyncPhoneFleetClient(phone_api.api.url, caller.key) as pf,
            AsyncPhoneFleetClient(phone_api.api.url, stranger.key, max_retries=0) as theirs,
        ):
            [device] = [d async for d in pf.devices()]
            assert device["state"] == "idle"
            session = await pf.start_session(ttl_s=120)
            sid = session["id"]
            serial = await read_device_serial(phone_api.api.db_url, session["device"]["id"])
            assert [s["id"] async for s in pf.sessions(state="active")] == [sid]

            shot = await pf.screenshot_response(sid, format="jpeg", scale=0.25)
            assert shot.headers["x-screen-width"] == "720"
            assert Image.open(io.BytesIO(shot.content)).size == (180, 400)
            assert (await pf.screenshot(sid))[:8] == b"\x89PNG\r\n\x1a\n"
            assert "<hierarchy" in await pf.ui_xml(sid)

            home = await pf.ui_tree(sid)
            [icon] = [e for e in home["elements"] if e.get("text") == "Settings"]
            assert (await pf.tap(sid, element_id=icon["id"]))["element"]["id"] == icon["id"]
            [wifi] = [e for e in (await pf.ui_tree(sid))["elements"]
                      if e.get("resource_id") == "com.android.settings:id/switch_wifi"]  # fmt: skip
            center = ((wifi["bounds"][0] + wifi["bounds"][2]) // 2, (wifi["bounds"][1] + wifi["bounds"][3]) // 2)
            await pf.tap(sid, *center)  # by point this time
            assert await asyncio.to_thread(phone_api.shell, serial, "settings get global wifi_on") == "0"
            assert (await pf.press_key(sid, "back"))["key"] == "back"
            assert (await pf.launch(sid, "Notes"))["package"] == "com.phonefleet.notes"
            assert (await pf.swipe(sid, points=(360, 1200, 360, 400)))["to"] == [360, 400]
            blob = bytes(range(256)) * 1024  # 256 KiB of every byte value
            assert (await pf.push_file(sid, "/sdcard/Download/blob.bin", blob))["bytes"] == len(blob)
            assert await pf.pull_file(sid, "/sdcard/Download/blob.bin") == blob
            with pytest.raises(PhoneFleetAPIError) as no_file:
                await pf.pull_file(sid, "/sdcard/Download/none.bin")
            assert no_file.value.status == 404 and no_file.value.code == "file_not_found"
            with pytest.raises(PhoneFleetAPIError) as escape:
                await pf.push_file(sid, "/sdcard/../data/x", b"x")
            assert escape.value.status == 422 and escape.value.code == "path_not_allowed"
            kept = await pf.keepalive(sid)
            assert kept["state"] == "active"

            with pytest.raises(PhoneFleetAPIError) as refused:
                await pf.tap(sid, element_id="e000000")
            assert refused.value.status == 404 and refused.value.code == "element_not_found"
            with pytest.raises(PhoneFleetAPIError) as hidden:
                await theirs.ui_tree(sid)
            assert hidden.value.code == "session_not_found"
            # The one phone is taken: no phone within wait_s, 503 with Retry-After (not retried here).
            with pytest.raises(PhoneFleetAPIError) as busy:
                await theirs.start_session(wait_s=0)
            assert busy.value.status == 503 and busy.value.code == "no_device_available"
            assert busy.value.retry_after_s is not None

            assert (await pf.close_session(sid))["state"] == "closed"
            assert (await pf.close_session(sid))["state"] == "closed"  # safe to resend
            with pytest.raises(PhoneFleetAPIError) as ended:
                await pf.screenshot(sid)
            assert ended.value.status == 409 and ended.value.code == "no_live_device"

    run(scenario(), timeout=180)


def test_it_needs_somewhere_to_send() -> None:
    with pytest.raises(ValueError, match="base_url"):
        AsyncPhoneFleetClient()
