"""The Evals page in headless Chromium against the API in process (no phones): an eval created through
the API is listed with a bar per model; its page shows each template's bar and links to its tasks.
The scores are written into the tasks as a worker's run writes them (``result.evaluation``)."""

from __future__ import annotations

import uuid
from pathlib import Path

import pytest
from sqlalchemy import update

from orchestrator.db import Task, TaskStatus, utcnow
from tests.aio import run
from tests.databases import open_sessions
from tests.orchestrator.conftest import Api
from tests.web.browser import S, Tab, chromium, expect


async def _score(db_url: str, task_id: str, score: float) -> None:
    async with open_sessions(db_url) as sessions, sessions() as session, session.begin():
        status = TaskStatus.SUCCEEDED if score == 1.0 else TaskStatus.FAILED
        result = {"evaluation": {"score": score, "success": score == 1.0,
                                 "reset": {"method": "pm clear + seeded state", "initialize_s": 0.4}}}  # fmt: skip
        await session.execute(update(Task).where(Task.id == uuid.UUID(task_id))
                              .values(status=status, finished_at=utcnow(), result=result, waiting=None))  # fmt: skip


@pytest.mark.timeout(240)
def test_evals_page_lists_runs_with_bars_and_links_to_tasks(api: Api, artifacts: Path) -> None:
    caller = api.caller()
    created = caller.http.post("/api/v1/evals", json={"suite": "builtin", "models": ["scripted"],
                                                      "templates": ["wifi_on", "add_contact"]})  # fmt: skip
    assert created.status_code == 201, created.text
    report = created.json()
    wifi, contact = report["task_list"]
    run(_score(api.db_url, wifi["task_id"], 1.0))
    run(_score(api.db_url, contact["task_id"], 0.5))

    async def scenario() -> None:
        async with chromium() as browser:
            tab = await Tab.open(browser, api.url, artifacts)
            page = tab.page
            await tab.login(caller.key)
            await page.get_by_role("link", name="Evals").click()
            await expect(page.get_by_role("heading", name="Evals", exact=True)).to_be_visible(timeout=10 * S)
            await expect(page.locator(".eval-bar").first).to_contain_text("scripted 50.0% (1/2)", timeout=10 * S)
            await tab.shot("01-evals")
            await page.get_by_role("link", name=report["id"][:8]).click()
            await expect(page.get_by_role("strong").filter(has_text="scripted")).to_be_visible(timeout=10 * S)
            bars = page.locator("tbody .eval-bar")
            await expect(bars).to_have_count(2)
            await expect(bars.nth(0)).to_contain_text("100.0% (1/1)")
            fill = await bars.nth(0).locator(".eval-bar-fill").evaluate("e => e.getBoundingClientRect().width / e.parentElement.getBoundingClientRect().width")
            assert fill > 0.99, f"the 100 % bar is filled to {fill:.2f}"
            await expect(bars.nth(1)).to_contain_text("0.0% (0/1)")
            await expect(page.get_by_text("pm clear + seeded state", exact=False)).to_be_visible()
            await tab.shot("02-eval")
            link = page.locator(f"a[href='#/tasks/{wifi['task_id']}']")
            await link.click()
            await expect(page).to_have_url(f"{api.url}/#/tasks/{wifi['task_id']}", timeout=10 * S)
            tab.assert_no_errors()

    run(scenario(), timeout=200)
