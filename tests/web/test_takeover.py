"""Taking over a task from the dashboard, in headless Chromium against the real fleet: while the agent
works, press Take over, click the phone's Wi-Fi switch on the live video, see the phone react, hand
back with a note, and see the agent finish — its next screenshot shows Wi-Fi off. Meanwhile a second
tenant, logged in the same way, finds neither the task page nor the phone's stream (404)."""

from __future__ import annotations

import datetime as dt
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from device_pool.driver import AdbDevice
from orchestrator.db import Device, Event
from tests.aio import run, until
from tests.databases import open_sessions
from tests.system.conftest import _member_key
from tests.system.test_fleet import switch_is_on, wifi_switch
from tests.web.browser import S, Tab, chromium, expect
from tests.web.conftest import WebFleet

# The agent opens Settings, then waits: time for a person to step in. Steps after the handback
# capture the screen the person left.
SCRIPT = [
    'do(action="Launch", app="Settings")',
    *['do(action="Wait", duration="2 seconds")'] * 4,
    'finish(message="done waiting")',
]
PHONE = (1080, 2400)  # the pool's sim phones

# Where a point of the phone's screen is on the page: the answer's geometry (the screen inside the
# video frame) and the element's box with object-fit: contain — computed here independently of the
# page's own mapping (gestures.js), which the click then exercises.
_GEOMETRY = """() => {
  const view = [...window.pf.viewers][0];
  const box = view.video.getBoundingClientRect();
  return {box: [box.left, box.top, box.width, box.height], video: view.answer.video,
          content: view.answer.content, screen: view.answer.screen};
}"""

# The signalling POST as another tenant's page would send it: a real offer, its own cookie and CSRF token.
_OFFER = """async (path) => {
  const pc = new RTCPeerConnection();
  pc.addTransceiver("video", {direction: "recvonly"});
  pc.createDataChannel("control");
  await pc.setLocalDescription(await pc.createOffer());
  const csrf = document.cookie.split("; ").find((c) => c.startsWith("pf_csrf=")).slice(8);
  const r = await fetch(path, {method: "POST", headers: {"Content-Type": "application/json", "X-CSRF-Token": csrf},
                               body: JSON.stringify({type: "offer", sdp: pc.localDescription.sdp})});
  pc.close();
  return {status: r.status, body: await r.json()};
}"""


def page_point(geometry: dict, x: float, y: float) -> tuple[float, float]:
    left, top, width, height = geometry["box"]
    vw, vh = geometry["video"]["width"], geometry["video"]["height"]
    content, screen = geometry["content"], geometry["screen"]
    scale = min(width / vw, height / vh)
    pic_left, pic_top = left + (width - vw * scale) / 2, top + (height - vh * scale) / 2
    vx = content["x"] + x / screen["width"] * content["width"]
    vy = content["y"] + y / screen["height"] * content["height"]
    return pic_left + vx * scale, pic_top + vy * scale


@pytest.mark.timeout(420)
def test_take_over_click_the_phone_hand_back_and_another_tenant_sees_nothing(web_fleet: WebFleet, artifacts: Path) -> None:
    fleet = web_fleet(1)
    model = fleet.start_model(SCRIPT)
    fleet.start_worker(model.base_url)
    other_key = run(_member_key(fleet.db_url))
    bounds = wifi_switch()
    switch = ((bounds[0] + bounds[2]) / 2, (bounds[1] + bounds[3]) / 2)
    task_id = fleet.submit("Wait in Settings", max_steps=10)["id"]

    async def serial_of(device_id: str) -> str:
        async with open_sessions(fleet.db_url) as sessions, sessions() as session:
            return await session.scalar(select(Device.serial).where(Device.id == uuid.UUID(device_id)))

    async def scenario() -> None:
        async with chromium() as browser:
            tab = await Tab.open(browser, fleet.url, artifacts, width=1000, height=800)
            page = tab.page
            await tab.login(fleet.key)
            await tab.goto(f"#/tasks/{task_id}")
            await expect(page.get_by_role("heading", name="Wait in Settings")).to_be_visible(timeout=15 * S)
            await tab.wait_video_playing(timeout_s=90)
            # Settings is in front once the agent's first step (Launch) is recorded.
            await expect(page.locator("#steps li.step")).to_have_count(1, timeout=60 * S)
            await expect(page.locator("#task-status [data-status]")).to_have_attribute("data-status", "running")

            await page.get_by_role("button", name="Take over").click()
            await expect(page.locator("#task-status [data-status]")).to_have_attribute("data-status", "user_control", timeout=30 * S)
            await expect(page.locator(".phone-status")).to_have_text("You control this phone.", timeout=15 * S)
            steps_before = await page.locator("#steps li.step").count()
            await tab.shot("01-taken-over")

            # A second tenant: the task page says not found; the stream's signalling answers 404.
            other = await Tab.open(browser, fleet.url, artifacts)
            await other.login(other_key)
            await other.goto(f"#/tasks/{task_id}")
            await expect(other.page.get_by_role("heading", name="Task not found")).to_be_visible(timeout=15 * S)
            await other.shot("02-other-tenant-task-not-found")
            task = await until(lambda: fleet.task(task_id), 5)
            for path, code in ((f"/api/v1/tasks/{task_id}/webrtc", "task_not_found"),
                               (f"/api/v1/devices/{task['device_id']}/webrtc", "device_not_found")):  # fmt: skip
                answer = await other.page.evaluate(_OFFER, path)
                assert answer["status"] == 404 and answer["body"]["error"] == code, (path, answer)
            assert await other.video_stats() is None
            other.assert_no_errors()

            # The person's click on the video reaches the phone: the Wi-Fi switch goes off.
            phone = AdbDevice(await serial_of(task["device_id"]), adb_port=fleet.adb_port)
            await phone.connect(timeout=15)
            assert (await phone.shell("settings get global wifi_on")).stdout.strip() == "1"
            x, y = page_point(await page.evaluate(_GEOMETRY), *switch)
            await page.mouse.click(x, y)
            await until(lambda: run(phone.shell("settings get global wifi_on")).stdout.strip() == "0", 15, "Wi-Fi off")
            await expect(page.locator(".phone-status")).to_have_text("You control this phone.")
            assert await page.locator("#steps li.step").count() == steps_before, "the agent stayed paused"
            await tab.shot("03-wifi-off")

            # Hand back with a note; the agent resumes and finishes.
            await page.get_by_role("button", name="Hand back…").click()
            dialog = page.locator("dialog[data-dialog=handback]")
            await expect(dialog).to_be_visible()
            await dialog.get_by_label("Note for the agent").fill("I turned Wi-Fi off")
            await dialog.get_by_role("button", name="Hand back", exact=True).click()
            await expect(dialog).to_be_hidden(timeout=10 * S)
            await expect(page.locator("#task-status [data-status]")).to_have_attribute("data-status", "succeeded", timeout=90 * S)
            await expect(page.locator(".phone-status")).to_have_text("")
            # The timeline shows the person's part: their tap (marked "You") and the hand-back's note.
            await expect(page.locator(".handback-note")).to_contain_text("I turned Wi-Fi off", timeout=10 * S)
            await expect(page.locator('.step[data-actor="user"] .actor').first).to_have_text("You")
            await tab.shot("04-handed-back-and-succeeded")
            tab.assert_no_errors()

    run(scenario(), timeout=400)

    # The agent's next screenshot after the handback shows the switch the person turned off.
    async def handback() -> Event:
        async with open_sessions(fleet.db_url) as sessions, sessions() as session:
            query = select(Event).where(Event.task_id == uuid.UUID(task_id), Event.type == "task.handback")
            return (await session.scalars(query)).one()

    event = run(handback())
    assert event.payload == {"note": "I turned Wi-Fi off"}, event.payload
    steps = fleet.steps(task_id)
    # The person's click is a step of theirs with the screen after it; their hand-back ends their part.
    mine = [s for s in steps if s["actor"] == "user"]
    assert mine[-1]["action"]["name"] == "Hand_back" and mine[-1]["note"] == "I turned Wi-Fi off", mine
    assert any(s["action"]["name"] == "Tap" and s["screenshot_url"] for s in mine), mine
    assert not switch_is_on(fleet.screenshot(next(s for s in mine if s["action"]["name"] == "Tap")), bounds)
    steps = [s for s in steps if s["actor"] == "agent"]
    after = [s for s in steps if dt.datetime.fromisoformat(s["created_at"]) > event.created_at]
    before = [s for s in steps if s not in after]
    assert before and after and after[0]["screenshot_url"], steps
    assert switch_is_on(fleet.screenshot(before[-1]), bounds), "Wi-Fi was on before the person's click"
    assert not switch_is_on(fleet.screenshot(after[0]), bounds), "the agent's next screen still showed Wi-Fi on"
