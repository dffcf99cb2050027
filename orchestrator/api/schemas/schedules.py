"""Request and response bodies of the schedule routes (``/api/v1/schedules``)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.api.schemas.common import EXAMPLE_TASK_ID, EXAMPLE_TIME
from orchestrator.db import CatchUp, Overlap, Schedule, Task, TaskStatus
from orchestrator.services.schedules import ScheduleChange, ScheduleSpec

__all__ = ["ScheduleCreate", "ScheduleOut", "ScheduleRunOut", "ScheduleUpdate"]

EXAMPLE_SCHEDULE_ID = "5a0e7c2d-3b1f-4d6e-8a9c-0f1e2d3c4b5a"


class ScheduleCreate(ScheduleSpec):
    """A new schedule: the task, and either ``cron`` (with ``timezone``) or ``interval_s``."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {"task": {"instruction": "Open Settings and turn on Wi-Fi"}, "cron": "0 9 * * 1-5",
                 "timezone": "Europe/Paris", "catch_up": "skip", "overlap": "skip"},
                {"task": {"instruction": "Open Settings and turn on Wi-Fi"}, "interval_s": 3600},
            ]
        },
    )  # fmt: skip


class ScheduleUpdate(ScheduleChange):
    """Change any field: ``{"paused": true}`` pauses it; ``cron`` replaces ``interval_s`` and the reverse."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"paused": True}]})


class ScheduleRunOut(BaseModel):
    """A schedule's latest run, in short (``GET /api/v1/tasks/{id}`` has the whole task)."""

    id: uuid.UUID
    status: TaskStatus
    due_at: dt.datetime | None
    created_at: dt.datetime
    finished_at: dt.datetime | None
    reason: str | None

    @classmethod
    def from_row(cls, task: Task) -> ScheduleRunOut:
        return cls(id=task.id, status=task.status, due_at=task.due_at, created_at=task.created_at,
                   finished_at=task.finished_at, reason=task.reason)  # fmt: skip


class ScheduleOut(BaseModel):
    """A schedule as the API shows it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": EXAMPLE_SCHEDULE_ID, "task": {"instruction": "Open Settings and turn on Wi-Fi"},
                    "cron": "0 9 * * 1-5", "timezone": "Europe/Paris", "interval_s": None,
                    "catch_up": "skip", "overlap": "skip", "paused": False, "paused_reason": None,
                    "next_due_at": EXAMPLE_TIME, "last_due_at": None, "consecutive_failures": 0,
                    "last_run": {"id": EXAMPLE_TASK_ID, "status": "succeeded", "due_at": EXAMPLE_TIME,
                                 "created_at": EXAMPLE_TIME, "finished_at": EXAMPLE_TIME, "reason": None},
                    "created_at": EXAMPLE_TIME, "updated_at": EXAMPLE_TIME,
                    "runs_url": f"/api/v1/schedules/{EXAMPLE_SCHEDULE_ID}/runs",
                }
            ]
        }
    )  # fmt: skip

    id: uuid.UUID
    task: dict[str, Any] = Field(description="The task body each run is made from.")
    cron: str | None
    timezone: str = Field(description="The IANA time zone the cron expression is read in.")
    interval_s: int | None
    catch_up: CatchUp
    overlap: Overlap
    paused: bool
    paused_reason: str | None = Field(
        description='Why it paused itself: "failures" (its runs kept failing); null when a person paused it.'
    )
    next_due_at: dt.datetime = Field(description="When the next run is due (while paused: would have been).")
    last_due_at: dt.datetime | None = Field(description="The latest due time a scheduler acted on.")
    consecutive_failures: int = Field(description="Runs in a row that ended failed or timed_out.")
    last_run: ScheduleRunOut | None
    created_at: dt.datetime
    updated_at: dt.datetime
    runs_url: str

    @classmethod
    def from_row(cls, schedule: Schedule, last_run: Task | None = None) -> ScheduleOut:
        return cls(
            id=schedule.id, task=schedule.task, cron=schedule.cron, timezone=schedule.timezone,
            interval_s=schedule.interval_s, catch_up=schedule.catch_up, overlap=schedule.overlap,
            paused=schedule.paused, paused_reason=schedule.paused_reason, next_due_at=schedule.next_due_at,
            last_due_at=schedule.last_due_at, consecutive_failures=schedule.consecutive_failures,
            last_run=None if last_run is None else ScheduleRunOut.from_row(last_run),
            created_at=schedule.created_at, updated_at=schedule.updated_at,
            runs_url=f"/api/v1/schedules/{schedule.id}/runs",
        )  # fmt: skip
