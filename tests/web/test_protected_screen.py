"""A protected screen in the dashboard, in headless Chromium against the real fleet: the Bank's login
is a secure window (its video is black), so the phone panel says why and outlines the login's
elements from the view tree; a person logs in by clicking those outlines and typing."""

from __future__ import annotations

from pathlib import Path

import pytest

from device_pool.driver import AdbDevice
from tests.aio import run, until
from tests.databases import read_device_serial
from tests.ui import find, wait_for_foreground
from tests.web.browser import S, Tab, chromium, expect
from tests.web.conftest import WebFleet

BANK = "com.phonefleet.bank"


@pytest.mark.timeout(300)
def test_a_protected_login_is_explained_outlined_and_usable(web_fleet: WebFleet, artifacts: Path) -> None:
    fleet = web_fleet(1)

    async def scenario() -> None:
        async with chromium() as browser:
            tab = await Tab.open(browser, fleet.url, artifacts, width=412, height=915)
            page = tab.page
            await tab.login(fleet.key)
            await page.get_by_role("link", name="Sessions").click()
            await page.get_by_role("button", name="Open a phone").click()
            await expect(page.locator("#session-status [data-status]")).to_have_attribute(
                "data-status", "active", timeout=20 * S
            )
            session_id = page.url.rsplit("/", 1)[1]
            session = (await until(lambda: fleet.http.get(f"/api/v1/sessions/{session_id}"), 5)).json()
            phone = AdbDevice(await read_device_serial(fleet.db_url, session["device"]["id"]), adb_port=fleet.adb_port)
            await phone.connect(timeout=15)
            await tab.wait_video_playing(timeout_s=60)
            await expect(page.locator(".phone-status")).to_have_text(
                "You control this phone.", timeout=15 * S
            )
            assert await page.locator(".screen .protected").is_hidden()  # the home screen is not protected

            await phone.launch("Bank")
            await wait_for_foreground(phone, BANK, timeout=15)
            note = page.locator(".screen .protected-note")
            await expect(note).to_contain_text("This screen is protected", timeout=15 * S)
            boxes = page.locator(".screen .protected-box")
            for label in ("Username", "Password", "Log in"):
                await expect(boxes.filter(has_text=label).first).to_be_visible()
            await tab.shot("01-protected-login")

            async def click_box(label: str) -> None:
                # The outlines let clicks through to the phone's surface: click where one is drawn.
                box = await boxes.filter(has_text=label).first.bounding_box()
                assert box is not None
                await page.mouse.click(box["x"] + box["width"] / 2, box["y"] + box["height"] / 2)

            await click_box("Username")
            await page.keyboard.type("demo")
            await until(
                lambda: find(run(phone.ui_dump()), rid="username").text == "demo", 10, "the username typed"
            )
            await click_box("Password")
            await until(
                lambda: find(run(phone.ui_dump()), rid="password").focused, 10, "the password field focused"
            )
            await page.keyboard.type("1234")
            await until(
                lambda: len(find(run(phone.ui_dump()), rid="password").text) == 4, 10, "the password typed"
            )
            await click_box("Log in")
            # Logged in: the account page is not secure, and the overlay goes away.
            await until(lambda: find(run(phone.ui_dump()), rid="balance"), 10, "the account page")
            await expect(page.locator(".screen .protected")).to_be_hidden(timeout=15 * S)
            await tab.shot("02-logged-in")
            tab.assert_no_errors()

    run(scenario(), timeout=280)
