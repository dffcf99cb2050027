"""A person's whole path through a task in the dashboard, in headless Chromium against the real fleet:
log in, submit a task from the form, watch the phone live while the agent works, approve its sensitive
action, answer its question and hand back after the login it asked for, see the steps arrive and the task succeed, download the
trajectory, and find the task succeeded in the list (live, from the events WebSocket)."""

from __future__ import annotations

import json
import re
import uuid
from pathlib import Path

import pytest
from sqlalchemy import select

from orchestrator.db import Event
from tests.aio import run
from tests.databases import open_sessions
from tests.web.browser import S, Tab, chromium, expect
from tests.web.conftest import WebFleet

SCRIPT = [
    'do(action="Launch", app="Settings")',
    'do(action="Wait", duration="2 seconds")',
    # On Settings' title: the confirmation names it from the phone's view tree (element_label).
    'do(action="Tap", element=[500, 60], message="Pay 1.00 EUR to the test shop")',
    'do(action="Interact", message="Which colour should the case be?")',
    'do(action="Take_over", message="Log in to the shop, please")',
    'finish(message="Ordered the blue case")',
]
INSTRUCTION = "Buy a phone case in the test shop"


@pytest.mark.timeout(420)
def test_submit_watch_answer_and_finish(web_fleet: WebFleet, artifacts: Path) -> None:
    fleet = web_fleet(1)
    model = fleet.start_model(SCRIPT)
    fleet.start_worker(model.base_url)

    async def scenario() -> str:
        async with chromium() as browser:
            tab = await Tab.open(browser, fleet.url, artifacts)
            page = tab.page
            await tab.open_login()
            await tab.shot("01-login")
            await tab.login(fleet.key)
            await tab.shot("02-tasks-empty")

            await page.get_by_label("Instruction", exact=True).fill(INSTRUCTION)
            await page.get_by_label("Max steps").fill("10")
            await page.get_by_role("button", name="Submit task").click()
            await expect(page.get_by_role("heading", name=INSTRUCTION)).to_be_visible(timeout=15 * S)
            task_id = page.url.rsplit("/", 1)[1]
            uuid.UUID(task_id)

            # The phone, live: WebRTC frames decoded and the video's clock moving.
            stats = await tab.wait_video_playing(timeout_s=90)
            assert (stats["width"], stats["height"]) == (360, 800), stats
            assert stats["connectionState"] == "connected", stats
            await expect(page.locator("#steps li.step").first).to_be_visible(timeout=30 * S)
            # The phone by a name for people (its serial for an admin, else "sim phone 5d0e8f57"), not a bare id prefix.
            await expect(page.locator("#task-phone")).to_have_text(re.compile(r"^(sim phone [0-9a-f]{8}|[\w.]+:\d+)$"), timeout=15 * S)
            await tab.shot("03-task-running")

            # The sensitive tap waits for a person: the dialog shows its message and the action.
            confirm = page.locator("dialog[data-dialog=confirm]")
            await expect(confirm).to_be_visible(timeout=60 * S)
            await expect(confirm).to_contain_text("Pay 1.00 EUR to the test shop")
            await expect(confirm.locator(".confirm-action")).to_have_text("Tap “Settings”")
            await expect(page.locator("#task-status [data-status]")).to_have_attribute("data-status", "awaiting_confirmation")
            # The details say why the task is not moving, in the agent's words (the task's `waiting`).
            await expect(page.locator("#task-waiting")).to_have_text("Pay 1.00 EUR to the test shop", timeout=15 * S)
            await expect(page.locator(".waiting-kind")).to_have_attribute("data-kind", "confirmation")
            # The step that asks is in the timeline while it waits, with its screenshot.
            asking = page.locator("#steps li.step", has=page.locator(".step-waiting"))
            await expect(asking).to_have_count(1, timeout=15 * S)
            await expect(asking).to_contain_text("Pay 1.00 EUR")
            await expect(asking.locator("img")).to_have_count(1)
            await tab.shot("04-confirmation")
            await confirm.get_by_role("button", name="Approve").click()
            await expect(confirm).to_be_hidden(timeout=10 * S)

            # Then its question.
            question = page.locator("dialog[data-dialog=question]")
            await expect(question).to_be_visible(timeout=60 * S)
            await expect(question).to_contain_text("Which colour should the case be?")
            await question.get_by_label("Your answer").fill("blue")
            await tab.shot("05-question")
            await question.get_by_role("button", name="Send answer").click()
            await expect(question).to_be_hidden(timeout=10 * S)

            # Then it asks for a person (a login): anyone of the tenant may use the phone until the handback.
            banner = page.locator("#task-banner")
            await expect(banner).to_contain_text("The agent asks you to take over: Log in to the shop, please", timeout=60 * S)
            await expect(page.locator(".phone-status")).to_have_text("You control this phone.", timeout=15 * S)
            await expect(page.get_by_role("button", name="Take over")).to_be_hidden()
            await page.get_by_role("button", name="Hand back…").click()
            handback = page.locator("dialog[data-dialog=handback]")
            await handback.get_by_label("Note for the agent").fill("Logged in")
            await handback.get_by_role("button", name="Hand back", exact=True).click()
            await expect(handback).to_be_hidden(timeout=10 * S)

            # The agent finishes; the timeline holds every step, each with its screenshot loaded.
            await expect(page.locator("#task-status [data-status]")).to_have_attribute("data-status", "succeeded", timeout=90 * S)
            steps = page.locator('#steps li.step[data-actor="agent"]')
            await expect(steps).to_have_count(len(SCRIPT), timeout=15 * S)
            # The person's part: the hand-back, with its note (no input of theirs on the phone here).
            mine = page.locator('#steps li.step[data-actor="user"]')
            await expect(mine).to_have_count(1)
            await expect(mine.locator(".handback-note")).to_have_text("Handed back to the agent: “Logged in”")
            await expect(steps.nth(5)).to_contain_text('finish(message="Ordered the blue case")')
            await expect(steps.nth(2)).to_contain_text("Pay 1.00 EUR")
            await expect(steps.first.locator(".timings")).to_contain_text("model")
            await page.wait_for_function(
                "() => [...document.querySelectorAll('#steps img')].every((i) => i.complete && i.naturalWidth > 0)"
                f" && document.querySelectorAll('#steps img').length === {len(SCRIPT)}", timeout=15 * S)
            await expect(page.locator(".phone .overlay")).to_contain_text("succeeded")
            await expect(page.locator("#task-waiting")).to_have_count(0)  # an ended task waits for nothing
            assert await tab.video_stats() is None, "the live view closed with the task"
            await tab.shot("06-task-succeeded")

            # The trajectory link downloads the zip.
            href = await page.get_by_role("link", name="Download trajectory (zip)").get_attribute("href")
            download = await page.evaluate(
                "async (href) => { const r = await fetch(href); const b = new Uint8Array(await r.arrayBuffer());"
                " return {status: r.status, type: r.headers.get('content-type'), magic: String.fromCharCode(b[0], b[1])}; }",
                href)
            assert download == {"status": 200, "type": "application/zip", "magic": "PK"}, download

            # The list shows it succeeded.
            await page.get_by_role("link", name="Tasks", exact=True).click()
            row = page.locator(f"tr[data-task-id='{task_id}']")
            await expect(row.locator("[data-status]")).to_have_attribute("data-status", "succeeded", timeout=15 * S)
            await tab.shot("07-tasks-list")
            tab.assert_no_errors()
            return task_id

    task_id = run(scenario(), timeout=400)

    # The answers reached the agent as the API's events.
    async def answers() -> dict[str, dict]:
        async with open_sessions(fleet.db_url) as sessions, sessions() as session:
            rows = await session.scalars(select(Event).where(Event.task_id == uuid.UUID(task_id)).order_by(Event.id))
            return {e.type: dict(e.payload or {}) for e in rows}

    events = run(answers())
    assert events["task.confirmation"] == {"approved": True}, json.dumps(events)
    assert events["task.reply"] == {"answer": "blue"}, json.dumps(events)
    assert events["task.handback"] == {"note": "Logged in"}, json.dumps(events)
