"""Holding a phone by hand from the dashboard, on a phone-sized screen, in headless Chromium against
the real fleet: the devices grid, open a session, use the phone through the live video (tap icons,
type with the keyboard and the text field, Backspace, Home), see it in the grid live, close it."""

from __future__ import annotations

from pathlib import Path

import pytest

from device_pool.driver import AdbDevice
from tests.aio import run, until
from tests.databases import read_device_serial
from tests.ui import find, wait_for_foreground
from tests.web.browser import S, Tab, chromium, expect
from tests.web.conftest import WebFleet
from tests.web.test_takeover import _GEOMETRY, page_point

NOTES = "com.phonefleet.notes"
LAUNCHER = "com.android.launcher3"


@pytest.mark.timeout(300)
def test_open_a_phone_use_it_by_hand_and_close_it(web_fleet: WebFleet, artifacts: Path) -> None:
    fleet = web_fleet(1)

    async def scenario() -> None:
        async with chromium() as browser:
            tab = await Tab.open(browser, fleet.url, artifacts, width=412, height=915)
            page = tab.page
            await tab.login(fleet.key)

            # The fleet: one idle phone, state only (not leased to this tenant; not an admin).
            await page.get_by_role("link", name="Devices").click()
            tile = page.locator("#device-grid li.device")
            await expect(tile).to_have_count(1, timeout=15 * S)
            await expect(tile.locator("[data-status]")).to_have_attribute("data-status", "idle")
            await expect(tile.locator(".thumb")).to_contain_text("State only")
            await tab.shot("01-devices-idle")

            await page.get_by_role("link", name="Sessions").click()
            await expect(page.get_by_role("heading", name="Your sessions")).to_be_visible()
            await tab.shot("02-sessions")
            await page.get_by_role("button", name="Open a phone").click()
            await expect(page.locator("#session-status [data-status]")).to_have_attribute("data-status", "active", timeout=20 * S)
            session_id = page.url.rsplit("/", 1)[1]
            session = (await until(lambda: fleet.http.get(f"/api/v1/sessions/{session_id}"), 5)).json()
            phone = AdbDevice(await read_device_serial(fleet.db_url, session["device"]["id"]), adb_port=fleet.adb_port)
            await phone.connect(timeout=15)

            await tab.wait_video_playing(timeout_s=60)
            await expect(page.locator(".phone-status")).to_have_text("You control this phone.", timeout=15 * S)

            async def click_node(**query: str) -> None:
                node = find(await phone.ui_dump(), **query)
                x, y = page_point(await page.evaluate(_GEOMETRY), *node.center)
                await page.mouse.click(x, y)

            # Taps on the video: the Notes icon, then New note (its title field takes the focus).
            await click_node(text="Notes")
            await wait_for_foreground(phone, NOTES, timeout=15)
            await until(lambda: find(run(phone.ui_dump()), rid="fab_new"), 10, "the New note button")
            await click_node(rid="fab_new")
            await until(lambda: find(run(phone.ui_dump()), rid="note_title").focused, 10, "the title field focused")

            # Typing while the video has focus goes to the phone; so does the text field (any script).
            await page.keyboard.type("Groceries")
            await until(lambda: find(run(phone.ui_dump()), rid="note_title").text == "Groceries", 10, "typed text")
            await page.get_by_label("Type on the phone").fill(" 牛奶")
            await page.get_by_role("button", name="Send").click()
            await until(lambda: find(run(phone.ui_dump()), rid="note_title").text == "Groceries 牛奶", 10, "sent text")
            await page.locator(".screen").focus()
            await page.keyboard.press("Backspace")
            await until(lambda: find(run(phone.ui_dump()), rid="note_title").text == "Groceries 牛", 10, "Backspace")
            await tab.shot("03-session-typing")

            # The phone's Home button.
            await page.get_by_role("button", name="Home").click()
            await wait_for_foreground(phone, LAUNCHER, timeout=15)

            # The grid shows the phone leased to this session, live.
            await page.get_by_role("link", name="Devices").click()
            await expect(tile.get_by_role("link", name=f"your session {session_id[:8]}")).to_be_visible(timeout=15 * S)
            await tab.wait_video_playing(timeout_s=30)
            await tab.shot("04-devices-leased-live")

            await tile.get_by_role("link", name=f"your session {session_id[:8]}").click()
            await expect(page.locator("#session-status [data-status]")).to_have_attribute("data-status", "active", timeout=15 * S)
            await page.get_by_role("button", name="Close session").click()
            await expect(page.locator("#session-status [data-status]")).to_have_attribute("data-status", "closed", timeout=15 * S)
            await expect(page.locator(".phone .overlay")).to_contain_text("closed")
            assert await tab.video_stats() is None
            await tab.shot("05-session-closed")
            tab.assert_no_errors()

    run(scenario(), timeout=280)
    assert fleet.http.get("/api/v1/sessions").json()["items"][0]["state"] == "closed"
