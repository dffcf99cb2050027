"""The task page's Share dialog: a person makes a link, and the link's page opens with no login.

The API in process with no phones (the task stays queued): the share page says it waits for the
task's phone. Watching through a link is tested in tests/orchestrator/live/test_share_view.py.
"""

from __future__ import annotations

from pathlib import Path

from tests.aio import run
from tests.orchestrator.conftest import Api
from tests.web.browser import S, Tab, chromium, expect


def test_the_task_page_makes_a_share_link_that_opens_without_a_login(api: Api, tmp_path: Path) -> None:
    owner = api.caller()
    submitted = owner.http.post("/api/v1/tasks", json={"instruction": "a task to share"})
    assert submitted.status_code == 202, submitted.text
    task_id = submitted.json()["id"]

    async def scenario() -> None:
        async with chromium() as browser:
            tab = await Tab.open(browser, api.url, tmp_path)
            page = tab.page
            await tab.login(owner.key)
            await tab.goto(f"#/tasks/{task_id}")
            await page.get_by_role("button", name="Share…").click()
            await page.get_by_label("Access").select_option("view")
            await page.get_by_label("Expires after").select_option("86400")
            await page.get_by_role("button", name="Make link").click()
            url_field = page.locator("#share-url")
            await expect(url_field).to_be_visible(timeout=10 * S)
            url = await url_field.input_value()
            assert url.startswith(f"{api.url}/share/pfs_"), url
            tab.assert_no_errors()

            # Someone else, with no login: the page opens and waits for the queued task's phone.
            stranger = await Tab.open(browser, api.url, tmp_path)
            await stranger.page.goto(url)
            await expect(stranger.page.locator("#status")).to_contain_text("holds no phone right now", timeout=15 * S)
            stranger.assert_no_errors()

            # The dialog lists the link with its one opening, and revokes it.
            await page.get_by_role("button", name="Share…").click()
            row = page.locator("section.share-links tbody tr")
            await expect(row).to_have_count(1, timeout=10 * S)
            await expect(row.locator(".uses")).to_have_text("1×")
            await expect(row.locator(".state")).to_have_text("live")
            await row.get_by_role("button", name="Revoke").click()
            await expect(row.locator(".state")).to_have_text("revoked", timeout=10 * S)
            tab.assert_no_errors()

        links = owner.http.get("/api/v1/share-links").json()
        assert [(x["target_id"], x["mode"], x["uses"]) for x in links] == [(task_id, "view", 1)], links
        assert links[0]["revoked_at"] is not None
        assert owner.http.get("/api/v1/share-links", params={"target_id": str(task_id)}).json() == links
        other = owner.http.post("/api/v1/tasks", json={"instruction": "another"}).json()["id"]
        assert owner.http.get("/api/v1/share-links", params={"target_id": other}).json() == []

    run(scenario())
