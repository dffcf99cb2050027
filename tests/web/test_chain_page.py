"""The task page shows a task chain (docs/api.md "Task chains"): each subgoal's status, result and
steps, read from the task's ``subgoals`` as the worker writes them; a failed subgoal's question
offers retry / skip / cancel as buttons, and the choice is the reply — in Chromium, the API in process."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import select, update

from orchestrator.db import Event, Task, TaskStatus, utcnow, waiting
from orchestrator.db.enums import WaitingKind
from tests.aio import run
from tests.databases import open_sessions
from tests.orchestrator.conftest import Api
from tests.web.browser import S, Tab, chromium, expect

QUESTION = (
    'Subgoal 1 of 2 failed: "Find the recipe" (max_steps: no result in 2 steps). Reply retry, skip or cancel.'
)


def test_the_task_page_shows_the_chain_and_answers_a_failed_subgoal(api: Api, tmp_path: Path) -> None:
    caller = api.caller()
    holder: dict = {}
    parts = [
        {"index": 0, "goal": "Find the recipe", "status": "failed", "reason": "max_steps",
         "message": "no result in 2 steps", "steps": 2, "first_step": 0, "last_step": 1, "runs": 1},
        {"index": 1, "goal": "Add the ingredients to the cart", "status": "pending"},
    ]  # fmt: skip

    async def asks(task_id: uuid.UUID) -> None:  # as the worker's chain writes it (worker/run/chain.py)
        async with open_sessions(api.db_url) as sessions, sessions() as session, session.begin():
            await session.execute(
                update(Task).where(Task.id == task_id).values(
                    status=TaskStatus.WAITING_FOR_USER, worker_id="w", subgoals=parts,
                    waiting=waiting(WaitingKind.QUESTION, QUESTION, utcnow()),
                )
            )  # fmt: skip
            session.add(Event(tenant_id=caller.tenant_id,
                              task_id=task_id, type="task.question", created_at=utcnow(),
                              payload={"question": QUESTION, "choices": ["retry", "skip", "cancel"], "subgoal": 0}))  # fmt: skip

    async def replies(task_id: uuid.UUID) -> list[str]:
        async with open_sessions(api.db_url) as sessions, sessions() as session:
            rows = await session.scalars(
                select(Event.payload).where(Event.task_id == task_id, Event.type == "task.reply")
            )
            return [row["answer"] for row in rows]

    async def scenario() -> None:
        async with chromium() as browser:
            tab = await Tab.open(browser, api.url, tmp_path)
            await tab.login(caller.key)
            # Submitted from the tasks page's form: a chain of two, asking on a failure.
            await tab.goto("#/tasks")
            await tab.page.locator("#instruction").fill("Cook dinner")
            await tab.page.locator("#subgoals").fill("Find the recipe\n\n  Add the ingredients to the cart  \n")
            await tab.page.locator("#on-step-failure").select_option("ask")
            await tab.page.get_by_role("button", name="Submit task").click()
            await expect(tab.page.get_by_role("heading", name="Cook dinner")).to_be_visible(timeout=10 * S)
            task_id = uuid.UUID(tab.page.url.rsplit("/", 1)[-1])
            holder["id"] = task_id
            task = caller.http.get(f"/api/v1/tasks/{task_id}").json()
            assert [p["goal"] for p in task["subgoals"]] == ["Find the recipe", "Add the ingredients to the cart"]
            assert task["on_step_failure"] == "ask"
            chain = tab.page.locator("#task-chain li")
            await expect(chain).to_have_count(2, timeout=10 * S)
            await expect(chain.nth(0)).to_have_text("Find the recipe — not run yet", timeout=10 * S)
            await asks(task_id)
            await tab.page.reload()
            await expect(chain.nth(0)).to_contain_text(
                "Find the recipe — failed (steps #0–#1)max_steps: no result in 2 steps", timeout=10 * S
            )
            await expect(chain.nth(1)).to_have_text("Add the ingredients to the cart — not run yet")
            dialog = tab.page.locator('dialog[data-dialog="choice"]')
            await expect(dialog).to_be_visible(timeout=10 * S)
            await expect(dialog).to_contain_text(QUESTION)
            await dialog.get_by_role("button", name="Skip it").click()
            await expect(dialog).to_be_hidden(timeout=10 * S)
            tab.assert_no_errors()

    run(scenario())
    assert run(replies(holder["id"])) == ["skip"]
