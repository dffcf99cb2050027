"""A task's recorded steps and their screenshots (files under ``data_dir``), and the snapshot of both
that a trajectory download archives (``services/trajectory_zip.py``)."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import select

from orchestrator.db import Step, Task
from orchestrator.db.database import Database
from orchestrator.db.pagination import Page, decode_index_cursor, encode_index_cursor
from orchestrator.errors import ScreenshotNotFound, StepNotFound
from orchestrator.services.auth import Principal
from orchestrator.services.tasks import load_task

__all__ = ["StepService"]


class StepService:
    """Steps of the caller's tenant's tasks, oldest first."""

    def __init__(self, db: Database, data_dir: Path) -> None:
        self.db = db
        self.data_dir = data_dir.resolve()

    async def list(
        self, principal: Principal, task_id: uuid.UUID, *, limit: int, cursor: str | None
    ) -> Page[Step]:
        """Steps in index order, ``limit`` at a time; raises ``TaskNotFound``, ``InvalidCursor``."""
        query = select(Step).where(Step.task_id == task_id)
        if cursor is not None:
            query = query.where(Step.index > decode_index_cursor(cursor))
        query = query.order_by(Step.index).limit(limit + 1)
        async with self.db.transaction() as db_session:
            await load_task(db_session, principal, task_id)
            rows = list(await db_session.scalars(query))
        more = len(rows) > limit
        rows = rows[:limit]
        return Page(rows, encode_index_cursor(rows[-1].index) if more else None)

    async def screenshot(self, principal: Principal, task_id: uuid.UUID, index: int) -> Path:
        """The screenshot file of step ``index``; raises ``TaskNotFound``, ``StepNotFound``, ``ScreenshotNotFound``."""
        async with self.db.transaction() as db_session:
            await load_task(db_session, principal, task_id)
            step = await db_session.scalar(select(Step).where(Step.task_id == task_id, Step.index == index))
        if step is None:
            raise StepNotFound(f"task {task_id} has no step {index}")
        if not step.screenshot:
            raise ScreenshotNotFound(f"step {index} of task {task_id} has no screenshot")
        path = self.screenshot_path(step)
        if path is None or not path.is_file():
            raise ScreenshotNotFound(f"the screenshot of step {index} of task {task_id} is gone")
        return path

    async def snapshot(self, principal: Principal, task_id: uuid.UUID) -> tuple[Task, list[Step]]:
        """The task and every step it has so far, in index order; raises ``TaskNotFound``.

        For a running task this is a snapshot: steps committed after the read are not in it.
        """
        async with self.db.transaction() as db_session:
            task = await load_task(db_session, principal, task_id)
            steps = list(
                await db_session.scalars(select(Step).where(Step.task_id == task_id).order_by(Step.index))
            )
        return task, steps

    def screenshot_path(self, step: Step) -> Path | None:
        """Where the step's screenshot is, or None (no screenshot, or a path that leaves ``data_dir``).

        The path comes from the database, but nothing outside ``data_dir`` is ever served.
        """
        if not step.screenshot:
            return None
        path = (self.data_dir / step.screenshot).resolve()
        return path if path.is_relative_to(self.data_dir) else None
