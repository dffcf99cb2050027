"""The task page shows a task's tries (docs/api.md "Tries"): how each ended and which steps it made,
read from the task's ``result.tries`` as the worker writes it — in Chromium, the API in process."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import update

from orchestrator.db import Task, TaskStatus, utcnow
from tests.aio import run
from tests.databases import open_sessions
from tests.orchestrator.conftest import Api
from tests.web.browser import S, Tab, chromium, expect

TRIES = [
    {"try": 1, "status": "failed", "reason": "max_steps", "message": "no result in 2 steps", "steps": 2,
     "first_step": 0, "last_step": 1, "elapsed_s": 4.1},
    {"try": 2, "status": "succeeded", "reason": None, "message": "Wi-Fi is on", "steps": 1,
     "first_step": 2, "last_step": 2, "elapsed_s": 1.2},
]  # fmt: skip


def test_the_task_page_lists_its_tries(api: Api, tmp_path: Path) -> None:
    caller = api.caller()
    task = caller.http.post("/api/v1/tasks", json={"instruction": "Turn on Wi-Fi", "max_tries": 2}).json()
    single = caller.http.post("/api/v1/tasks", json={"instruction": "Just once"}).json()

    async def ended() -> None:  # as the worker's end writes it (worker/run/tries.py)
        async with open_sessions(api.db_url) as sessions, sessions() as session, session.begin():
            await session.execute(
                update(Task).where(Task.id == uuid.UUID(task["id"])).values(
                    status=TaskStatus.SUCCEEDED, finished_at=utcnow(), message="Wi-Fi is on (succeeded on try 2 of 2)",
                    result={"steps": 3, "tries": TRIES, "succeeded_on_try": 2},
                )
            )  # fmt: skip

    async def scenario() -> None:
        async with chromium() as browser:
            tab = await Tab.open(browser, api.url, tmp_path)
            await tab.login(caller.key)
            await tab.goto(f"#/tasks/{task['id']}")
            await expect(tab.page.locator("#task-tries")).to_have_text("up to 2", timeout=10 * S)
            await ended()
            await tab.page.reload()
            await expect(tab.page.locator("#task-tries")).to_have_text(
                "2 of 2 — try 1: max_steps (steps #0–#1); try 2: succeeded (steps #2–#2)", timeout=10 * S
            )
            await tab.goto(f"#/tasks/{single['id']}")
            await expect(tab.page.get_by_role("heading", name="Just once")).to_be_visible(timeout=10 * S)
            await expect(tab.page.locator("#task-tries")).to_have_count(0)  # one try: nothing to say
            tab.assert_no_errors()

    run(scenario())
