"""The Webhooks page in headless Chromium against the API in process: an admin lists, creates
(seeing the secret once), rotates the secret of and deletes the tenant's webhook subscriptions; the
tenant's cap is said; a member is told only admins manage them (and sees no link)."""

from __future__ import annotations

import re
from pathlib import Path

from orchestrator.db import UserRole
from orchestrator.services.webhook_subscriptions import SUBSCRIBABLE_EVENTS
from tests.aio import run
from tests.orchestrator.conftest import Api
from tests.web.browser import S, Tab, chromium, expect

SUB = "/api/v1/webhooks"
SECRET = re.compile(r"^whsec_\S{40,}$")


def test_an_admin_creates_rotates_and_deletes_subscriptions(api: Api, tmp_path: Path) -> None:
    admin = api.caller(role=UserRole.ADMIN)
    member = api.caller(tenant_id=admin.tenant_id)
    most = api.settings.webhooks.max_subscriptions_per_tenant
    # All but one of the tenant's cap already taken (through the API).
    for _ in range(most - 2):
        assert admin.http.post(SUB, json={"url": "https://hooks.example.com/old", "events": ["task.step"]}).status_code == 201

    async def scenario() -> None:
        async with chromium() as browser:
            tab = await Tab.open(browser, api.url, tmp_path)
            page = tab.page
            page.on("dialog", lambda dialog: dialog.accept())  # the rotate and delete confirmations
            await tab.login(admin.key)
            await expect(page.locator("#nav-webhooks")).to_be_visible(timeout=10 * S)
            await tab.goto("#/webhooks")
            rows = page.locator("tbody tr")
            await expect(rows).to_have_count(most - 2, timeout=10 * S)
            # The page offers exactly the server's event types.
            offered = await page.locator("#webhook-events input[type=checkbox]").evaluate_all("els => els.map(e => e.value)")
            assert offered == list(SUBSCRIBABLE_EVENTS)

            await page.locator("#webhook-url").fill("https://hooks.example.com/pf")
            await page.locator("#event-task\\.subgoal").check()
            await page.get_by_role("button", name="Create subscription").click()
            secret = page.locator("#webhook-secret")
            await expect(secret).to_have_text(SECRET, timeout=10 * S)
            first = await secret.text_content()
            await expect(rows).to_have_count(most - 1)
            mine = admin.http.get(SUB).json()[0]
            assert (mine["url"], mine["events"]) == ("https://hooks.example.com/pf", ["task.status", "task.subgoal"])
            row = page.locator(f'tr[data-subscription-id="{mine["id"]}"]')
            await expect(row.locator(".events")).to_have_text("task.status, task.subgoal")
            await expect(row.locator(".rotated")).to_have_text("never")

            await row.get_by_role("button", name="Rotate secret").click()
            await expect(secret).not_to_have_text(first or "", timeout=10 * S)
            await expect(secret).to_have_text(SECRET)
            await expect(row.locator(".rotated")).not_to_have_text("never", timeout=10 * S)

            # The cap: one more fits, the next is refused with the server's reason.
            # Each create is awaited before the next fill: the form empties its URL field when a create
            # succeeds, which would otherwise wipe the second URL typed while the first was in flight.
            await page.locator("#webhook-url").fill("https://hooks.example.com/last")
            await page.get_by_role("button", name="Create subscription").click()
            await expect(rows).to_have_count(most, timeout=10 * S)
            await page.locator("#webhook-url").fill("https://hooks.example.com/over")
            await page.get_by_role("button", name="Create subscription").click()
            await expect(page.locator("form .error")).to_contain_text("webhooks.max_subscriptions_per_tenant", timeout=10 * S)
            await expect(rows).to_have_count(most)

            await row.get_by_role("button", name="Delete").click()
            await expect(rows).to_have_count(most - 1, timeout=10 * S)
            assert mine["id"] not in [s["id"] for s in admin.http.get(SUB).json()]
            tab.assert_no_errors()

            other = await Tab.open(browser, api.url, tmp_path)
            await other.login(member.key)
            await other.goto("#/webhooks")
            await expect(other.page.locator("#webhooks-admins-only")).to_be_visible(timeout=10 * S)
            await expect(other.page.locator("#nav-webhooks")).to_be_hidden()
            other.assert_no_errors()

    run(scenario())
