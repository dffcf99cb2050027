"""The Usage page in headless Chromium against the API in process (``api``, no phones): a tenant sees
what it holds now against its limits (an unlimited one says so) and its tasks of today; another
tenant's tasks are not counted."""

from __future__ import annotations

from pathlib import Path

from orchestrator.db import UserRole
from tests.aio import run
from tests.orchestrator.conftest import Api
from tests.web.browser import S, Tab, chromium, expect


def test_usage_page_shows_the_tenants_usage_and_limits(api: Api, artifacts: Path) -> None:
    admin = api.caller(role=UserRole.ADMIN)
    member = api.caller(tenant_id=admin.tenant_id)
    operator = api.caller(role=UserRole.OPERATOR)  # a tenant's limits are the operator's to set
    limited = operator.http.put(f"/api/v1/tenants/{admin.tenant_id}/limits", json={"max_concurrent_tasks": 2})
    assert limited.status_code == 200, limited.text
    for instruction in ("Open Settings", "Open Notes"):
        assert member.http.post("/api/v1/tasks", json={"instruction": instruction}).status_code == 202
    assert api.caller().http.post("/api/v1/tasks", json={"instruction": "Someone else's"}).status_code == 202
    today = member.http.get("/api/v1/usage").json()["days"][-1]["day"]

    async def scenario() -> None:
        async with chromium() as browser:
            tab = await Tab.open(browser, api.url, artifacts)
            page = tab.page
            await tab.login(member.key)
            await page.get_by_role("link", name="Usage").click()
            await expect(page.get_by_role("heading", name="Usage", exact=True)).to_be_visible(timeout=10 * S)
            tasks = page.locator("#limits-table tr[data-limit='max_concurrent_tasks']")
            await expect(tasks.locator(".limit")).to_have_text("2", timeout=10 * S)
            await expect(tasks.locator(".now")).to_have_text("0")  # queued, not running
            devices = page.locator("#limits-table tr[data-limit='max_concurrent_devices']")
            await expect(devices.locator(".limit")).to_have_text("Unlimited")
            row = page.locator(f"#usage-table tr[data-day='{today}']")
            await expect(row.locator("td").first).to_have_text("2")  # this tenant's two, not the other's
            await expect(page.locator("#usage-table tbody tr")).to_have_count(7)
            assert page.url.endswith("#/usage")
            await tab.shot("usage")
            tab.assert_no_errors()

    run(scenario())
