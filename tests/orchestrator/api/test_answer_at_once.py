"""A person who answers the instant a task shows it waits is never refused (no 409 race).

The worker's own writers (``TaskHooks`` over ``TaskRows``) ask, against a real API over HTTP. The
person is hooked onto the worker's commits: right after every transaction the worker commits, the
task's row is read, and the first time it says the task waits for a person the answer is POSTed,
before the worker's next statement. Were the status and the request event written in two
transactions, that answer would land between them and get a 409 ("the agent has not asked yet").
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest

from orchestrator.db import TaskStatus, Tenant
from orchestrator.db.database import Database, DbSession
from tests.aio import run
from tests.databases import open_sessions
from tests.orchestrator.api.conftest import Api
from tests.orchestrator.factories import make_task
from worker.agent import actions as a
from worker.agent.steering import AgentState, AgentSteering
from worker.run.hooks import TaskHooks
from worker.run.rows import TaskRows

WAITS = (TaskStatus.AWAITING_CONFIRMATION, TaskStatus.WAITING_FOR_USER)


class AnsweredAtOnce(TaskRows):
    """The worker's rows, with a person who answers the moment a commit shows the task waiting."""

    def __init__(self, *args: Any, answer: Callable[[], int], **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.answer = answer
        self.codes: list[int] = []

    @asynccontextmanager
    async def _written(self, *, write: bool = False) -> AsyncIterator[DbSession]:
        async with super()._written(write=write) as db_session:
            yield db_session
        row = await self.read()
        if row is not None and row.status in WAITS and not self.codes:
            self.codes.append(await asyncio.to_thread(self.answer))


# the agent's state, how it asks (given the hooks), the route and body that answer, what it gets
ASKS = {
    "confirmation": (
        AgentState.AWAITING_CONFIRMATION,
        lambda hooks: hooks.request_confirmation(a.Tap(element=(500, 500), message="Pay 10 EUR"), "Pay 10 EUR"),
        "confirm", {"approved": True}, True,
    ),
    "takeover": (
        AgentState.WAITING_FOR_USER, lambda hooks: hooks.request_takeover("Please log in"),
        "handback", {"note": "logged in"}, "logged in",
    ),
    "question": (
        AgentState.ASKING_USER, lambda hooks: hooks.ask_user("Which size?"),
        "reply", {"answer": "medium"}, "medium",
    ),
}  # fmt: skip


@pytest.mark.parametrize("kind", list(ASKS))
def test_an_answer_sent_the_instant_the_task_waits_is_accepted(api: Api, tmp_path: Path, kind: str) -> None:
    state, ask, route, body, expected = ASKS[kind]
    caller = api.caller()

    async def body_() -> None:
        async with open_sessions(api.db_url) as sessions:
            async with sessions() as session, session.begin():
                tenant = await session.get_one(Tenant, caller.tenant_id)
                task = await make_task(session, tenant, status=TaskStatus.RUNNING, worker_id="host:1/w")
            task_id: uuid.UUID = task.id

            def answer() -> int:
                return caller.http.post(f"/api/v1/tasks/{task_id}/{route}", json=body).status_code

            rows = AnsweredAtOnce(Database(sessions), task_id, "host:1/w", answer=answer)
            rows.tenant_id, rows.status = caller.tenant_id, TaskStatus.RUNNING
            hooks = TaskHooks(rows, AgentSteering(), data_dir=tmp_path, deadline=time.monotonic() + 60,
                              poll_s=0.05, wait_for_user_s=10)  # fmt: skip
            await hooks.on_state(state, "asked")
            got = await ask(hooks)
            assert rows.codes == [200], f"the answer at the instant the task waited got {rows.codes}"
            assert got == expected

    run(body_())
