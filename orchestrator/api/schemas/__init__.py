"""Request and response bodies of REST API v1 (with the examples OpenAPI shows)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field, field_validator

from device_pool.pool import DRAIN_LABEL
from device_pool.providers import DeviceProfile
from orchestrator.db import (
    CANCEL_REQUESTED,
    ApiKey,
    DeviceState,
    Step,
    Task,
    TaskStatus,
    User,
    UserRole,
    WebhookStatus,
)
from orchestrator.services.devices import DeviceView
from orchestrator.services.specs import TaskSpec, plain_text
from orchestrator.services.webhooks import DeliveryView

__all__ = [
    "ApiKeyCreate",
    "ApiKeyOut",
    "ConfirmIn",
    "DeviceCreate",
    "DeviceLeaseOut",
    "DeviceOut",
    "ErrorOut",
    "HandbackIn",
    "IssuedKeyOut",
    "LoginIn",
    "LoginOut",
    "PageOut",
    "ReadinessOut",
    "ReplyIn",
    "StepOut",
    "TakeoverIn",
    "TaskCreate",
    "TaskOut",
    "WebhookDeliveryOut",
    "WhoAmIOut",
]

_TASK_ID = "0b5f4c1e-8d1a-4f0e-9a53-2f7c1d9e6b10"
_TIME = "2025-01-31T12:00:00.123456Z"


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


class TaskOut(BaseModel):
    """A task as the API shows it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": _TASK_ID, "status": "queued", "instruction": "Open Settings and turn on Wi-Fi",
                    "device_profile": {"android": 13}, "max_steps": 30, "timeout_s": 600, "model": None,
                    "webhook_url": None, "metadata": {"ticket": "OPS-1234"}, "reason": None, "message": None,
                    "device_id": None, "attempts": 0, "cancel_requested": False, "result": None,
                    "created_at": _TIME, "started_at": None, "finished_at": None,
                    "steps_url": f"/api/v1/tasks/{_TASK_ID}/steps",
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
    max_steps: int
    timeout_s: int
    model: str | None
    webhook_url: str | None
    metadata: dict[str, Any]
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
    steps_url: str

    @classmethod
    def from_row(cls, task: Task) -> TaskOut:
        return cls(
            id=task.id, status=task.status, instruction=task.instruction, device_profile=task.device_profile,
            max_steps=task.max_steps, timeout_s=task.timeout_s, model=task.model, webhook_url=task.webhook_url,
            metadata=task.metadata_, reason=task.reason, message=task.message, device_id=task.device_id,
            attempts=task.attempts, cancel_requested=CANCEL_REQUESTED in (task.result or {}),
            result=task.result, created_at=task.created_at, started_at=task.started_at,
            finished_at=task.finished_at, steps_url=f"/api/v1/tasks/{task.id}/steps",
        )  # fmt: skip


class StepOut(BaseModel):
    """One agent step: what the model saw, thought and did."""

    index: int
    created_at: dt.datetime
    current_app: str | None
    thinking: str | None
    action_text: str | None = Field(description='The action as the model wrote it: do(action="Tap", …).')
    action: dict[str, Any] | None = Field(description="The parsed action.")
    result: str | None
    note: str | None
    timings: dict[str, Any] = Field(description="Seconds: capture_s, model_s, act_s, settle_s.")
    prompt_tokens: int | None
    completion_tokens: int | None
    screenshot_url: str | None

    @classmethod
    def from_row(cls, step: Step) -> StepOut:
        url = f"/api/v1/tasks/{step.task_id}/steps/{step.index}/screenshot" if step.screenshot else None
        return cls(
            index=step.index, created_at=step.created_at, current_app=step.current_app,
            thinking=step.thinking, action_text=step.action_text, action=step.action, result=step.result,
            note=step.note, timings=step.timings, prompt_tokens=step.prompt_tokens,
            completion_tokens=step.completion_tokens, screenshot_url=url,
        )  # fmt: skip


class WebhookDeliveryOut(BaseModel):
    """One event's webhook delivery to the task's ``webhook_url``: its attempts so far."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "9a1c2e33-7d7b-4f1e-9f43-0c1f7a5b2d10", "event_id": 4711, "event_type": "task.status",
                    "url": "https://example.com/hooks/phonefleet", "status": "pending", "attempts": 2,
                    "last_status_code": 500, "last_error": "HTTP 500: oops", "next_attempt_at": _TIME,
                    "delivered_at": None, "created_at": _TIME,
                }
            ]
        }
    )  # fmt: skip

    id: uuid.UUID = Field(description="Sent as X-PhoneFleet-Delivery; the same on every retry.")
    event_id: int = Field(description="The event's id (the body's `id`).")
    event_type: str
    url: str
    status: WebhookStatus = Field(description="pending (waiting for an attempt), delivered, failed (gave up).")
    attempts: int
    last_status_code: int | None = Field(description="The last attempt's HTTP status; null if none came.")
    last_error: str | None = Field(description="Why the last attempt failed (status and body start, or the error).")
    next_attempt_at: dt.datetime | None
    delivered_at: dt.datetime | None
    created_at: dt.datetime

    @classmethod
    def from_view(cls, view: DeliveryView) -> WebhookDeliveryOut:
        d = view.delivery
        return cls(
            id=d.id, event_id=d.event_id, event_type=view.event_type, url=d.url, status=d.status,
            attempts=d.attempts, last_status_code=d.last_status_code, last_error=d.last_error,
            next_attempt_at=d.next_attempt_at, delivered_at=d.delivered_at, created_at=d.created_at,
        )  # fmt: skip


class DeviceLeaseOut(BaseModel):
    """The device's current lease; shown only when it is your tenant's."""

    task_id: uuid.UUID | None
    session_id: uuid.UUID | None = None
    holder: str
    acquired_at: dt.datetime
    expires_at: dt.datetime


class DeviceOut(BaseModel):
    """A phone of the shared pool."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "5d0e8f57-0a3c-4d42-8c55-3b8f7f1f2a01", "provider": "sim", "state": "idle",
                    "profile": {"width": 1080, "height": 2400, "density": 420, "android": 13, "apps": []},
                    "labels": {}, "health_checked_at": _TIME, "updated_at": _TIME, "lease": None,
                    "serial": None, "last_error": None,
                }
            ]
        }
    )  # fmt: skip

    id: uuid.UUID
    provider: str
    state: DeviceState
    profile: dict[str, Any]
    labels: dict[str, Any]
    health_checked_at: dt.datetime | None
    updated_at: dt.datetime
    lease: DeviceLeaseOut | None
    serial: str | None = Field(default=None, description="ADB address; admins only.")
    last_error: str | None = Field(default=None, description="Admins only.")

    @classmethod
    def from_view(cls, view: DeviceView) -> DeviceOut:
        d, lease = view.device, view.lease
        lease_out = None
        if lease is not None:
            lease_out = DeviceLeaseOut(task_id=lease.task_id, session_id=lease.session_id, holder=lease.holder,
                                       acquired_at=lease.acquired_at, expires_at=lease.expires_at)  # fmt: skip
        return cls(
            id=d.id, provider=d.provider, state=d.state, profile=d.profile, labels=d.labels,
            health_checked_at=d.health_checked_at, updated_at=d.updated_at, lease=lease_out,
            serial=d.serial if view.internal else None, last_error=d.last_error if view.internal else None,
        )  # fmt: skip


class DeviceCreate(BaseModel):
    """Register a static ADB phone (admins): provider ``static``, state ``provisioning`` until the pool checks it."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [
                {
                    "serial": "10.0.0.7:5555",
                    "profile": {"width": 1080, "height": 2400, "density": 420, "android": "13", "apps": []},
                    "labels": {"rack": "a1"},
                }
            ]
        },
    )

    serial: str = Field(
        min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$",
        description="What adb calls it: host:port for a TCP phone (the pool runs adb connect), else a USB serial.",
    )  # fmt: skip
    profile: DeviceProfile = Field(
        default_factory=DeviceProfile,
        description="What the phone is; its health check compares the screen size with width × height.",
    )
    labels: dict[str, str] = Field(default_factory=dict, description="Yours: ≤ 32 string labels.")

    @field_validator("serial", mode="after")
    @classmethod
    def _serial(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if sep and port.isdigit() and not (host and 0 < int(port) < 65536):
            raise ValueError("host:port needs a host and a port from 1 to 65535")
        return value

    @field_validator("profile", mode="after")
    @classmethod
    def _profile(cls, value: DeviceProfile) -> DeviceProfile:
        if len(value.android) > 32 or len(value.apps) > 200 or any(len(app) > 255 for app in value.apps):
            raise ValueError("android is at most 32 characters; apps at most 200 names of ≤ 255")
        for text in (value.android, *value.apps):
            plain_text(text)
        return value

    @field_validator("labels", mode="after")
    @classmethod
    def _labels(cls, value: dict[str, str]) -> dict[str, str]:
        if len(value) > 32:
            raise ValueError("at most 32 labels")
        if DRAIN_LABEL in value:
            raise ValueError(f"{DRAIN_LABEL!r} is reserved: use POST /api/v1/devices/{{id}}/drain")
        for key, text in value.items():
            if not 0 < len(key) <= 64 or len(text) > 256:
                raise ValueError("label names are 1–64 characters, values at most 256")
            plain_text(key)
            plain_text(text)
        return value


T = TypeVar("T")


class PageOut(BaseModel, Generic[T]):
    """A page: pass ``next_cursor`` back as ``cursor`` for the next one; null on the last page."""

    items: list[T]
    next_cursor: str | None


class ErrorOut(BaseModel):
    """Every error answer."""

    model_config = ConfigDict(
        json_schema_extra={"examples": [{"error": "task_not_found", "message": f"no task {_TASK_ID}"}]}
    )

    error: str = Field(description="Stable, machine-readable code.")
    message: str = Field(description="What went wrong, for people.")
    details: list[dict[str, Any]] | None = Field(
        default=None, description="Validation errors: loc, msg, type."
    )


class ReadinessOut(BaseModel):
    """Each dependency: "ok" or why not."""

    status: str = Field(examples=["ready", "unavailable"])
    checks: dict[str, str] = Field(examples=[{"database": "ok", "broker": "ok"}])


class ApiKeyCreate(BaseModel):
    """Issue a key for a user of your tenant (the user is created if new)."""

    model_config = ConfigDict(extra="forbid")

    user: str = Field(min_length=1, max_length=200, pattern=r"^[\w.@+-]+$", examples=["ci-bot"])
    role: UserRole = UserRole.MEMBER
    name: str = Field(default="default", min_length=1, max_length=200, pattern=r"^[\w .@+-]+$")


class ApiKeyOut(BaseModel):
    """A key without its secret."""

    id: uuid.UUID
    name: str
    prefix: str
    user: str
    role: UserRole
    created_at: dt.datetime
    last_used_at: dt.datetime | None
    revoked_at: dt.datetime | None

    @classmethod
    def from_row(cls, key: ApiKey, user: User) -> ApiKeyOut:
        return cls(id=key.id, name=key.name, prefix=key.prefix, user=user.name, role=user.role,
                   created_at=key.created_at, last_used_at=key.last_used_at, revoked_at=key.revoked_at)  # fmt: skip


class IssuedKeyOut(ApiKeyOut):
    """A new key: ``key`` is shown this once and never again."""

    key: str = Field(examples=["pf_1a2b3c4d_Zx…"])


class LoginIn(BaseModel):
    """Log in to the dashboard with an API key."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"api_key": "pf_1a2b3c4d_Zx…"}]})

    api_key: str = Field(min_length=1, max_length=512, description="`pf_<prefix>_<secret>`")

    _check_key = field_validator("api_key")(plain_text)


class WhoAmIOut(BaseModel):
    """The caller: tenant, user, role, and how it authenticated."""

    tenant: str
    user: str
    role: UserRole
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    key_id: uuid.UUID
    auth: str = Field(examples=["cookie", "bearer"], description="`bearer` (API key) or `cookie` (login)")
    login_expires_at: dt.datetime | None = Field(description="When the login ends; null for `bearer`.")
    session_expires_at: dt.datetime | None = Field(
        deprecated=True, description="Deprecated (removed next release): the same as `login_expires_at`."
    )


class LoginOut(WhoAmIOut):
    """A new login: the cookies are set; ``csrf_token`` is also in the ``pf_csrf`` cookie."""

    csrf_token: str = Field(description="Send it as `X-CSRF-Token` on POST/PUT/PATCH/DELETE.")
