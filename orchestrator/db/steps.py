"""Adding a step to a task: the one place a step's index is chosen, for every writer.

Two processes write one task's steps: the worker (the agent's steps) and the API (a person's
actions on the phone during a takeover, ``orchestrator/live/user_steps.py``, and the hand-back).
Each new step takes the next index of the task (``max + 1``, 0 for the first) inside the
transaction that inserts it, after locking the task's row (PostgreSQL: ``SELECT … FOR UPDATE``;
SQLite: the caller's write transaction, ``Database.transaction(write=True)``, holds the database's
one write lock), so two writers never pick the same index and the order is the order of commits.
The screenshot file is named after the index it got: ``tasks/<task_id>/step-NNN.jpg``, sealed
(``orchestrator/encryption.py``) when ``storage.encryption_key`` is set: then its bytes are no JPEG.
"""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path
from typing import Any

from sqlalchemy import func, insert, select

from orchestrator.db.engine import DbSession
from orchestrator.db.models import Step, Task
from orchestrator.encryption import Cipher, write_stored

__all__ = ["AGENT", "HAND_BACK", "USER", "insert_step", "step_screenshot_path"]

AGENT, USER = "agent", "user"  # Step.actor
HAND_BACK = "Hand_back"  # the action of the step a person's hand-back records (its note as message)


def step_screenshot_path(task_id: uuid.UUID, index: int) -> str:
    """Where step ``index`` (0-based) of a task keeps its screenshot, relative to ``data_dir``."""
    return f"tasks/{task_id}/step-{index:03d}.jpg"


async def insert_step(
    db_session: DbSession,
    task_id: uuid.UUID,
    values: dict[str, Any],
    *,
    jpeg: bytes | None = None,
    data_dir: Path | None = None,
    cipher: Cipher | None = None,
) -> int:
    """Insert a step with the task's next index (see the module docstring) and return that index.

    ``jpeg``: the step's screenshot, written under ``data_dir`` before the row (a row never names a
    file that is not there; a transaction that fails after it leaves a file a later step of the
    same index overwrites). ``cipher``: seals the file (``screenshot_cipher(settings)``).
    """
    await db_session.execute(select(Task.id).where(Task.id == task_id).with_for_update())
    index = await db_session.scalar(
        select(func.coalesce(func.max(Step.index) + 1, 0)).where(Step.task_id == task_id)
    )
    row = {**values, "index": int(index or 0)}
    if jpeg is not None:
        assert data_dir is not None, "a screenshot needs the data_dir to write it under"
        relative = step_screenshot_path(task_id, row["index"])
        await asyncio.to_thread(write_stored, data_dir / relative, jpeg, cipher)
        row["screenshot"] = relative
    await db_session.execute(insert(Step).values(task_id=task_id, **row))
    return row["index"]
