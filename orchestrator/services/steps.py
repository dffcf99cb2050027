"""A task's recorded steps and their screenshots (files under ``data_dir``, sealed when
``storage.encryption_key`` is set: read back here, opened), the snapshot of both that a trajectory
download archives (``services/trajectory_zip.py``), and a personal phone's thumbnail (the latest
screenshot of a task on it)."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

from sqlalchemy import select

from orchestrator.db import Step, Task
from orchestrator.db.database import Database
from orchestrator.db.pagination import Page, decode_index_cursor, encode_index_cursor
from orchestrator.encryption import Cipher, SealedDamaged, SealedWithOtherKey, read_stored
from orchestrator.errors import ScreenshotNotFound, StepNotFound, StoredFileUnreadable
from orchestrator.services.auth import Principal
from orchestrator.services.tasks import load_task

__all__ = ["StepService"]


class StepService:
    """Steps of the caller's tenant's tasks, oldest first."""

    def __init__(self, db: Database, data_dir: Path, *, cipher: Cipher | None = None) -> None:
        self.db = db
        self.data_dir = data_dir.resolve()
        self.cipher = cipher

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

    async def screenshot(self, principal: Principal, task_id: uuid.UUID, index: int) -> bytes:
        """The screenshot of step ``index``, plain (JPEG); raises ``TaskNotFound``, ``StepNotFound``,
        ``ScreenshotNotFound``, ``StoredFileUnreadable``."""
        async with self.db.transaction() as db_session:
            await load_task(db_session, principal, task_id)
            step = await db_session.scalar(select(Step).where(Step.task_id == task_id, Step.index == index))
        if step is None:
            raise StepNotFound(f"task {task_id} has no step {index}")
        if not step.screenshot:
            raise ScreenshotNotFound(f"step {index} of task {task_id} has no screenshot")
        return await self._read(step, f"the screenshot of step {index} of task {task_id}")

    async def phone_thumbnail(self, tenant_id: uuid.UUID, phone_id: uuid.UUID) -> bytes:
        """The latest screenshot recorded by a task on the personal phone (its thumbnail); the
        caller checked who may see the phone. Raises ``ScreenshotNotFound``, ``StoredFileUnreadable``."""
        query = (
            select(Step)
            .join(Task, Task.id == Step.task_id)
            .where(
                Task.tenant_id == tenant_id, Task.personal_phone_id == phone_id, Step.screenshot.is_not(None)
            )
            .order_by(Task.created_at.desc(), Step.index.desc())
            .limit(1)
        )
        async with self.db.transaction() as db_session:
            step = await db_session.scalar(query)
        if step is None:
            raise ScreenshotNotFound(f"no task on personal phone {phone_id} recorded a screenshot yet")
        return await self._read(step, f"the thumbnail of personal phone {phone_id}")

    async def last_screenshot(self, tenant_id: uuid.UUID, task_id: uuid.UUID) -> bytes:
        """The task's newest recorded screenshot (a share link's page of an ended task: its final
        state); the caller checked who may see it. Raises ``ScreenshotNotFound``, ``StoredFileUnreadable``."""
        query = (
            select(Step)
            .join(Task, Task.id == Step.task_id)
            .where(Task.tenant_id == tenant_id, Step.task_id == task_id, Step.screenshot.is_not(None))
            .order_by(Step.index.desc())
            .limit(1)
        )
        async with self.db.transaction() as db_session:
            step = await db_session.scalar(query)
        if step is None:
            raise ScreenshotNotFound(f"task {task_id} recorded no screenshot")
        return await self._read(step, f"the last screenshot of task {task_id}")

    def read(self, path: Path) -> bytes:
        """A stored screenshot's plain bytes (blocking). Raises ``OSError``, ``SealedWithOtherKey``,
        ``SealedDamaged``."""
        return read_stored(path, self.cipher)

    async def _read(self, step: Step, what: str) -> bytes:
        path = self.screenshot_path(step)
        try:
            if path is None:
                raise FileNotFoundError(step.screenshot)
            return await asyncio.to_thread(self.read, path)
        except OSError:
            raise ScreenshotNotFound(f"{what} is gone") from None
        except (SealedWithOtherKey, SealedDamaged) as exc:
            raise StoredFileUnreadable(
                f"{what} is encrypted and cannot be opened with storage.encryption_key: {exc}"
            ) from None

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
