"""The Schedules page in headless Chromium against the API in process (no phones): create a schedule
with the form (interval and cron), see its runs appear with their status and its next due time,
pause, resume, see a schedule that paused itself because its runs kept failing, and delete.

Runs are made by a scheduler pass in the test (``Scheduler.tick``) on the test's own database, the
code ``phonefleet pool`` runs; their final state is written as a worker writes it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.db import TaskStatus, utcnow
from orchestrator.db.database import Database
from orchestrator.queue import TaskQueue
from orchestrator.services.scheduler import Scheduler
from orchestrator.settings import ScheduleSettings
from tests.aio import run
from tests.databases import migrate_to_head, open_sessions, throwaway_postgres
from tests.orchestrator.conftest import Api, StartApi
from tests.orchestrator.schedules import end_run, set_schedule
from tests.web.browser import S, Tab, chromium, expect


@pytest.fixture
def own_pg_url() -> Iterator[str]:
    # A database of the test's own: a scheduler pass acts on every due schedule in it.
    with throwaway_postgres() as db:
        migrate_to_head(db.url)
        yield db.url


@pytest.fixture
def own_api(own_pg_url: str, start_api: StartApi) -> Api:
    # The database first: it is dropped after the API has stopped.
    return start_api(own_pg_url)


async def _tick(api: Api) -> list:
    async with open_sessions(api.db_url) as sessions:
        queue = TaskQueue.from_settings(api.settings, key_prefix=api.redis_prefix)
        try:
            return await Scheduler(Database(sessions), queue, ScheduleSettings()).tick()
        finally:
            queue.close()


@pytest.mark.timeout(240)
def test_schedules_page_lists_runs_and_next_due_time_pause_resume_delete(own_api: Api, artifacts: Path) -> None:
    api = own_api
    caller = api.caller()

    async def scenario() -> None:
        async with chromium() as browser:
            tab = await Tab.open(browser, api.url, artifacts)
            page = tab.page
            page.on("dialog", lambda dialog: dialog.accept())  # the delete confirmation
            await tab.login(caller.key)
            await page.get_by_role("link", name="Schedules").click()
            await expect(page.get_by_role("heading", name="Schedules", exact=True)).to_be_visible(timeout=10 * S)
            await expect(page.get_by_text("No schedules yet")).to_be_visible()

            # A bad interval: the API's reason, on the form.
            await page.get_by_label("Task instruction").fill("Open Settings and turn on Wi-Fi")
            await page.get_by_label("Seconds between runs").fill("3")
            await page.get_by_role("button", name="Create schedule").click()
            await expect(page.locator("form [role=alert]")).to_contain_text("the minimum interval is 10 s", timeout=10 * S)

            await page.get_by_label("Seconds between runs").fill("60")
            await page.get_by_role("button", name="Create schedule").click()
            rows = page.locator("tr[data-schedule-id]")
            await expect(rows).to_have_count(1, timeout=10 * S)
            first = rows.first
            await expect(first.locator(".instruction")).to_contain_text("Open Settings and turn on Wi-Fi")
            await expect(first).to_contain_text("every 1 min")
            await expect(first.locator(".next-due")).to_contain_text("in ")
            await expect(first.locator(".runs")).to_contain_text("none yet")
            await expect(first.locator(".state [data-state]")).to_have_attribute("data-state", "active")

            # A cron schedule in a time zone, whose runs are chains.
            await page.get_by_label("Task instruction").fill("Turn on Bluetooth")
            await page.locator("#schedule-subgoals").fill("Open Settings\nTurn on Bluetooth")
            await page.locator("#schedule-on-step-failure").select_option("ask")
            await page.get_by_label("Runs", exact=True).select_option("cron")
            await page.get_by_label("Cron").fill("0 9 * * 1-5")
            await page.get_by_label("Time zone").fill("Europe/Paris")
            await page.get_by_role("button", name="Create schedule").click()
            await expect(rows).to_have_count(2, timeout=10 * S)
            cron_row = rows.filter(has_text="Turn on Bluetooth")
            await expect(cron_row).to_contain_text("0 9 * * 1-5")
            await expect(cron_row).to_contain_text("(Europe/Paris)")
            await expect(cron_row.locator(".chain-size")).to_have_text("a chain of 2 subgoals")
            cron_id = await cron_row.get_attribute("data-schedule-id")
            made_task = caller.http.get(f"/api/v1/schedules/{cron_id}").json()["task"]
            assert (made_task["subgoals"], made_task["on_step_failure"]) == (["Open Settings", "Turn on Bluetooth"], "ask")
            await tab.shot("01-schedules")

            # Its first run, made by a scheduler pass once due: shown with its status, linked.
            interval_row = rows.filter(has_text="Open Settings")
            sid = uuid.UUID(await interval_row.get_attribute("data-schedule-id"))
            await set_schedule(api.db_url, sid, next_due_at=utcnow())
            (made,) = await _tick(api)
            link = interval_row.locator(f"a[data-run-id='{made.id}']")
            await expect(link.locator("[data-status]")).to_have_attribute("data-status", "queued", timeout=10 * S)
            await end_run(api.db_url, made.id, TaskStatus.SUCCEEDED)
            await expect(link.locator("[data-status]")).to_have_attribute("data-status", "succeeded", timeout=10 * S)
            assert await link.get_attribute("href") == f"#/tasks/{made.id}"

            # Pause and resume.
            await interval_row.get_by_role("button", name="Pause").click()
            await expect(interval_row.locator(".state [data-state]")).to_have_attribute("data-state", "paused", timeout=10 * S)
            await expect(interval_row.locator(".next-due")).to_have_text("—")
            assert (caller.http.get(f"/api/v1/schedules/{sid}").json()["paused"]) is True
            await interval_row.get_by_role("button", name="Resume").click()
            await expect(interval_row.locator(".state [data-state]")).to_have_attribute("data-state", "active", timeout=10 * S)
            assert (caller.http.get(f"/api/v1/schedules/{sid}").json()["paused"]) is False

            # A schedule that paused itself, one whose personal phone was deleted: the page says why.
            cron_id = uuid.UUID(await cron_row.get_attribute("data-schedule-id"))
            await set_schedule(api.db_url, sid, paused=True, paused_reason="personal_phone_deleted")
            await set_schedule(api.db_url, cron_id, paused=True, paused_reason="failures", consecutive_failures=5)
            await expect(cron_row.locator(".state")).to_contain_text("Paused: its last 5 runs failed", timeout=10 * S)
            await expect(interval_row.locator(".state")).to_contain_text("its personal phone was deleted", timeout=10 * S)
            await tab.shot("02-runs-and-paused")

            await cron_row.get_by_role("button", name="Delete").click()
            await expect(rows).to_have_count(1, timeout=10 * S)
            assert caller.http.get(f"/api/v1/schedules/{cron_id}").status_code == 404
            tab.assert_no_errors()

    run(scenario())
