"""Request and response bodies of the task routes (``/api/v1/tasks``): submit, read, people's answers."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from orchestrator.api.schemas.common import EXAMPLE_TASK_ID, EXAMPLE_TIME
from orchestrator.db import CANCEL_REQUESTED, Task, TaskStatus, WaitingKind
from orchestrator.services.specs import TaskSpec, plain_text

__all__ = ["ConfirmIn", "HandbackIn", "ReplyIn", "TakeoverIn", "TaskCreate", "TaskOut", "WaitingOut"]


class TaskCreate(TaskSpec):
    """Submit a task: only ``instruction`` is required."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "instruction": "Open Settings and turn on Wi-Fi",
                    "device_profile": {"android": 13},
                    "max_steps": 30,
                    "timeout_s": 600,
                    "webhook_url": "https://example.com/hooks/phonefleet",
                    "metadata": {"ticket": "OPS-1234"},
                }
            ]
        },
    )


class ConfirmIn(BaseModel):
    """Approve or deny the sensitive action the agent waits on."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"approved": True}]})

    approved: bool = Field(strict=True, description="true: do it; false: the run ends failed/denied.")


class TakeoverIn(BaseModel):
    """Take control of the phone from the agent."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"note": "I'll log in"}]})

    note: str | None = Field(default=None, max_length=2000, description="Why, for the record.")

    _check_note = field_validator("note")(plain_text)


class HandbackIn(BaseModel):
    """Give control back to the agent, with a note it reads in its next turn."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"note": "logged in"}]})

    note: str = Field(max_length=2000, description="What you did (0–2000 characters).")

    _check_note = field_validator("note")(plain_text)


class ReplyIn(BaseModel):
    """Answer the agent's question."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"answer": "medium"}]})

    answer: str = Field(min_length=1, max_length=2000, description="Your answer (1–2000 characters).")

    _check_answer = field_validator("answer")(plain_text)


class WaitingOut(BaseModel):
    """Why a task is not moving (docs/api.md, "Why a task waits")."""

    kind: WaitingKind = Field(description="What it waits for; one list for the whole product.")
    message: str = Field(description="The same, for people: the agent's request, the error retried…")
    since: dt.datetime = Field(description="When it started waiting for this.")


class SubgoalOut(BaseModel):
    """One subgoal of a task chain, as the worker last wrote it."""

    index: int = Field(description="Its place in the chain, from 0 (the steps' subgoal).")
    goal: str = Field(description="The subgoal, as submitted.")
    status: str = Field(
        description="pending, running, succeeded, failed, timed_out, cancelled, or skipped (a person said skip)."
    )
    reason: str | None = Field(default=None, description="Why it ended, when it did not succeed.")
    message: str | None = Field(default=None, description="Its result: the agent's final message for it.")
    steps: int = Field(default=0, description="Its steps (agent steps; all its tries).")
    first_step: int | None = Field(default=None, description="The index of its first step.")
    last_step: int | None = Field(default=None, description="The index of its last step.")
    runs: int = Field(default=0, description="Times it was run (a person's retry runs it again).")
    tries: list[dict[str, Any]] | None = Field(
        default=None, description="Its last run's tries, when it had several."
    )
    started_at: dt.datetime | None = None
    finished_at: dt.datetime | None = None


class TaskOut(BaseModel):
    """A task as the API shows it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": EXAMPLE_TASK_ID, "status": "queued", "instruction": "Open Settings and turn on Wi-Fi",
                    "device_profile": {"android": 13}, "max_steps": 30, "max_tries": 1, "timeout_s": 600, "model": None,
                    "webhook_url": None, "metadata": {"ticket": "OPS-1234"}, "retry_after_acting": None,
                    "reason": None, "message": None,
                    "device_id": None, "attempts": 0, "cancel_requested": False, "result": None,
                    "created_at": EXAMPLE_TIME, "started_at": None, "finished_at": None,
                    "waiting": {"kind": "queued", "message": "waiting for a worker to claim it",
                                "since": EXAMPLE_TIME},
                    "steps_url": f"/api/v1/tasks/{EXAMPLE_TASK_ID}/steps",
                    "schedule_id": None, "due_at": None,
                }
            ]
        }
    )  # fmt: skip

    id: uuid.UUID
    status: TaskStatus
    instruction: str
    device_profile: dict[str, Any] | str | None = Field(
        description="What the phone must match: an object, or a named profile of the operator's."
    )
    max_steps: int = Field(description="Agent steps per try.")
    max_tries: int = Field(description="Tries the agent gets after its own failures (see result.tries).")
    timeout_s: int
    subgoals: list[SubgoalOut] | None = Field(
        default=None,
        description="The task chain, in order: each subgoal's status and result (null: no chain).",
    )
    on_step_failure: str | None = Field(
        default=None, description="What a failed subgoal does: stop or ask (null: no chain)."
    )
    model: str | None
    webhook_url: str | None
    metadata: dict[str, Any]
    retry_after_acting: bool | None = Field(
        description="May an infrastructure failure be retried after the task acted on the phone "
        "(null: yes, unless it made a sensitive step)."
    )
    reason: str | None = Field(
        description="Why it ended, machine-readable: cancelled, max_steps, worker_lost…"
    )
    message: str | None = Field(description="The agent's final message or the error, for people.")
    device_id: uuid.UUID | None
    attempts: int
    cancel_requested: bool = Field(description="A cancel was asked for while a worker held the task.")
    result: dict[str, Any] | None
    created_at: dt.datetime
    started_at: dt.datetime | None
    finished_at: dt.datetime | None
    waiting: WaitingOut | None = Field(
        description="Why the task is not moving, or null while it moves and once it ended."
    )
    steps_url: str
    schedule_id: uuid.UUID | None = Field(
        default=None, description="The schedule this task is a run of; null for a task submitted by hand."
    )
    due_at: dt.datetime | None = Field(default=None, description="A schedule's run: the due time it was made for.")
    personal_phone_id: uuid.UUID | None = Field(default=None, description="The personal phone it runs on, if any.")
    allowed_apps: list[str] | None = Field(
        default=None, description="The only apps the agent may use (besides the launcher and system UI); null: any."
    )

    @classmethod
    def from_row(cls, task: Task) -> TaskOut:
        return cls(
            id=task.id, status=task.status, instruction=task.instruction, device_profile=task.device_profile,
            max_steps=task.max_steps, max_tries=task.max_tries, timeout_s=task.timeout_s, model=task.model, webhook_url=task.webhook_url,
            metadata=task.metadata_, retry_after_acting=task.retry_after_acting, reason=task.reason, message=task.message, device_id=task.device_id,
            attempts=task.attempts, cancel_requested=CANCEL_REQUESTED in (task.result or {}),
            result=task.result, created_at=task.created_at, started_at=task.started_at,
            finished_at=task.finished_at, waiting=task.waiting, steps_url=f"/api/v1/tasks/{task.id}/steps",
            schedule_id=task.schedule_id, due_at=task.due_at,
            personal_phone_id=task.personal_phone_id, allowed_apps=task.allowed_apps,
            subgoals=task.subgoals, on_step_failure=task.on_step_failure,
        )  # fmt: skip
