"""Two writers of one task's steps (the worker's agent, the API's person-made steps) never pick the
same index: ``insert_step`` numbers each step under the task's row lock (PostgreSQL) or the
database's write lock (SQLite)."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import select

from orchestrator.db import Step
from orchestrator.db.database import Database
from orchestrator.db.steps import AGENT, USER, insert_step, step_screenshot_path
from tests.aio import run
from tests.databases import open_sessions
from tests.orchestrator.factories import make_task

PER_WRITER = 15


def test_concurrent_writers_number_steps_without_gaps_or_clashes(db_url: str, tmp_path: Path) -> None:
    async def body() -> tuple[list[tuple[int, str, str | None]], list[int], object]:
        async with open_sessions(db_url) as setup, setup.begin() as s:
            task_id = (await make_task(s)).id

        async def writer(actor: str) -> list[int]:
            # Its own engine and connection pool, as a separate process would have.
            async with open_sessions(db_url) as sessions:
                db = Database(sessions)
                got = []
                for n in range(PER_WRITER):
                    async with db.transaction(write=True) as s:
                        row = {"actor": actor, "action_text": f"{actor} {n}", "timings": {}}
                        got.append(
                            await insert_step(
                                s, task_id, row, jpeg=b"\xff\xd8" + bytes([n]), data_dir=tmp_path
                            )
                        )
                return got

        agent, user = await asyncio.gather(writer(AGENT), writer(USER))
        async with open_sessions(db_url) as sessions, sessions() as s:
            rows = (await s.execute(select(Step.index, Step.actor, Step.screenshot).where(Step.task_id == task_id)
                                    .order_by(Step.index))).all()  # fmt: skip
        return [tuple(r) for r in rows], agent + user, task_id

    rows, returned, task_id = run(body())
    assert [r[0] for r in rows] == list(range(2 * PER_WRITER))
    assert sorted(returned) == list(range(2 * PER_WRITER))
    # Each writer's own steps keep its order; each screenshot is named after the index it got.
    for actor in (AGENT, USER):
        mine = [r for r in rows if r[1] == actor]
        assert len(mine) == PER_WRITER
    for index, _actor, shot in rows:
        assert shot == step_screenshot_path(task_id, index) and (tmp_path / shot).is_file()
