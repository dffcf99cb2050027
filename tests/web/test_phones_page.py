"""My phones in headless Chromium against the real fleet (a virtual phone, a worker, the reference
model in its rule mode): make personal phone P on the page, Open it (a session on P: the live
view), log in to the Bank by hand through the live view, close the session; then New task on this
phone finds the Bank still logged in (nobody is asked), and the task is listed on P's card, its last
screen as P's thumbnail; rename
P, and delete it with its name typed (a wrong name is refused)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from device_pool.driver import AdbDevice
from tests.aio import run, until
from tests.databases import read_device_serial
from tests.processes import start_reference_model
from tests.ui import Node, find, wait_for_foreground
from tests.web.browser import S, Tab, chromium, expect
from tests.web.conftest import WebFleet
from tests.web.test_takeover import _GEOMETRY, page_point

BANK = "com.phonefleet.bank"
BANK_STATE = "/data/data/com.phonefleet.bank/files/state.json"
LOGIN = "Open Bank and log in"


@pytest.mark.timeout(420)
def test_make_open_log_in_by_hand_task_rename_and_delete(web_fleet: WebFleet, artifacts: Path) -> None:
    fleet = web_fleet(1)
    model = start_reference_model(fleet.logs, timeout=60)  # its rules: log in to the Bank, or ask a person
    fleet.models.append(model)  # stopped with the fleet
    fleet.start_worker(model.base_url)

    async def scenario() -> None:
        async with chromium() as browser:
            tab = await Tab.open(browser, fleet.url, artifacts)
            page = tab.page
            await tab.login(fleet.key)
            await page.get_by_role("link", name="My phones").click()
            await expect(page.get_by_role("heading", name="My phones", exact=True)).to_be_visible(timeout=10 * S)
            await expect(page.get_by_text("No phones yet")).to_be_visible(timeout=10 * S)

            # Make P: asleep, never used, no tasks.
            await page.get_by_label("Phone name").fill("P")
            await page.get_by_role("button", name="Create phone").click()
            card = page.locator("li.personal-phone")
            await expect(card).to_have_count(1, timeout=10 * S)
            await expect(card.locator(".phone-name")).to_have_text("P")
            await expect(card.locator(".state [data-status]")).to_have_attribute("data-status", "asleep")
            await expect(card).to_contain_text("no tasks yet")
            phone_id = await card.get_attribute("data-phone-id")
            await tab.shot("01-phone-made")

            # Open: a session on P (woken on the pool's phone), its live view.
            await card.get_by_role("button", name="Open").click()
            await expect(page.locator("#session-status [data-status]")).to_have_attribute("data-status", "active", timeout=60 * S)
            session_id = page.url.rsplit("/", 1)[1]
            session = fleet.http.get(f"/api/v1/sessions/{session_id}").json()
            assert session["personal_phone_id"] == phone_id
            device_id = session["device"]["id"]
            phone = AdbDevice(await read_device_serial(fleet.db_url, session["device"]["id"]), adb_port=fleet.adb_port)
            await phone.connect(timeout=15)
            await tab.wait_video_playing(timeout_s=60)
            await expect(page.locator(".phone-status")).to_have_text("You control this phone.", timeout=15 * S)

            async def click_node(**query: str) -> None:
                node = await until(lambda: _node(phone, **query), 15, f"node {query}")
                x, y = page_point(await page.evaluate(_GEOMETRY), *node.center)
                await page.mouse.click(x, y)

            # The login, by hand through the live view: the Bank's icon, its fields, its button.
            await page.get_by_role("button", name="Home").click()
            await click_node(text="Bank")
            await wait_for_foreground(phone, BANK, timeout=15)
            for rid, text in (("username", "demo"), ("password", "1234")):
                await click_node(rid=rid)
                await until(lambda rid=rid: (n := _node(phone, rid=rid)) is not None and n.focused, 10, f"{rid} focused")
                await page.keyboard.type(text)
            await click_node(rid="login_button")
            await until(lambda: _node(phone, rid="balance"), 15, "the Bank's balance")
            assert await _signed_in(phone)
            await tab.shot("02-logged-in-by-hand")
            await page.get_by_role("button", name="Close session").click()
            await expect(page.locator("#session-status [data-status]")).to_have_attribute("data-status", "closed", timeout=15 * S)

            # Back on My phones: P is kept awake for its next use, its device kept.
            await page.get_by_role("link", name="My phones").click()
            await expect(card.locator(".state [data-status]")).to_have_attribute("data-status", "ready", timeout=30 * S)
            await expect(card).to_contain_text("Last used")

            # A task on P from its card: the Bank is still logged in, so nobody is asked.
            await card.get_by_role("link", name="New task on this phone").click()
            await expect(page.get_by_role("heading", name="New task on your phone")).to_be_visible(timeout=10 * S)
            await expect(page.locator("#task-phone strong")).to_have_text("P", timeout=10 * S)
            await expect(page.get_by_label("Device profile")).to_be_hidden()
            await page.get_by_label("Instruction", exact=True).fill(LOGIN)
            await page.get_by_role("button", name="Submit task").click()
            await expect(page.get_by_role("heading", name=LOGIN)).to_be_visible(timeout=15 * S)
            task_id = page.url.rsplit("/", 1)[1]
            task = await until(lambda: _ended(fleet.http.get(f"/api/v1/tasks/{task_id}").json()), 120, "the task ended")
            assert task["status"] == "succeeded", task
            assert task["personal_phone_id"] == phone_id and task["device_id"] == device_id
            assert "balance is $" in task["message"], task["message"]

            # Listed on P's card, with its status, linked.
            await page.get_by_role("link", name="My phones").click()
            link = card.locator(f"a[data-task-id='{task_id}']")
            await expect(link.locator("[data-status]")).to_have_attribute("data-status", "succeeded", timeout=15 * S)
            await expect(link).to_contain_text(LOGIN)
            assert await link.get_attribute("href") == f"#/tasks/{task_id}"
            # Its thumbnail: the last screen the task recorded (the Bank's balance), loaded.
            thumb = card.locator("img.thumb-img")
            await expect(thumb).to_be_visible(timeout=10 * S)
            await page.wait_for_function("(img) => img.complete && img.naturalWidth > 0", arg=await thumb.element_handle())
            width, height = await thumb.evaluate("(img) => [img.naturalWidth, img.naturalHeight]")
            assert 0 < width < height  # a portrait phone's screen, decoded (served decrypted when sealed)
            await tab.shot("03-task-listed")

            # Rename.
            await card.get_by_role("button", name="Rename").click()
            dialog = page.locator("dialog[data-dialog=rename]")
            await dialog.get_by_label("New name").fill("bank phone")
            await dialog.get_by_role("button", name="Rename").click()
            await expect(card.locator(".phone-name")).to_have_text("bank phone", timeout=10 * S)
            assert fleet.http.get(f"/api/v1/personal-phones/{phone_id}").json()["name"] == "bank phone"

            # Delete: only with its name typed. A ready phone can go (its device is stopped first).
            await expect(card.locator(".state [data-status]")).to_have_attribute("data-status", "ready", timeout=30 * S)
            await card.get_by_role("button", name="Delete").click()
            dialog = page.locator("dialog[data-dialog=delete]")
            await expect(dialog).to_contain_text("bank phone")
            await dialog.get_by_label("Type the phone's name to confirm").fill("P")
            await dialog.get_by_role("button", name="Delete for good").click()
            await expect(dialog.locator("[role=alert]")).to_contain_text("confirm", timeout=10 * S)
            assert fleet.http.get(f"/api/v1/personal-phones/{phone_id}").status_code == 200
            await tab.shot("04-delete-refused")
            await dialog.get_by_label("Type the phone's name to confirm").fill("bank phone")
            await dialog.get_by_role("button", name="Delete for good").click()
            await expect(card).to_have_count(0, timeout=10 * S)
            await expect(page.get_by_text("No phones yet")).to_be_visible()
            assert fleet.http.get(f"/api/v1/personal-phones/{phone_id}").status_code == 404
            # Its task stays in the task list.
            assert fleet.http.get(f"/api/v1/tasks/{task_id}").json()["status"] == "succeeded"
            tab.assert_no_errors()

    run(scenario(), timeout=400)


def _node(phone: AdbDevice, **query: str) -> Node | None:
    try:
        return find(run(phone.ui_dump()), **query)
    except AssertionError:  # not on screen (yet)
        return None


def _ended(task: dict) -> dict | None:
    # waiting_for_user too: a task that asks for the login has failed this test, at once.
    return task if task["status"] in ("succeeded", "failed", "cancelled", "timed_out", "waiting_for_user") else None


async def _signed_in(phone: AdbDevice) -> bool:
    out = (await phone.shell(f"cat {BANK_STATE}")).stdout.strip()
    return out.startswith("{") and json.loads(out).get("signed_in") == "demo"
