"""Request and response bodies of the device routes (``/api/v1/devices``)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from device_pool.pool import DRAIN_LABEL, POOL_LABEL
from device_pool.providers import DeviceProfile
from orchestrator.api.schemas.common import EXAMPLE_TIME
from orchestrator.db import DeviceState
from orchestrator.services.devices import DeviceView
from orchestrator.services.specs import plain_text

__all__ = ["DeviceCreate", "DeviceLeaseOut", "DeviceOut"]


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
                    "labels": {}, "health_checked_at": EXAMPLE_TIME, "updated_at": EXAMPLE_TIME, "lease": None,
                    "serial": None, "last_error": None, "quarantined_at": None, "quarantine_reason": None,
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
    serial: str | None = Field(default=None, description="ADB address; the operator only.")
    last_error: str | None = Field(default=None, description="The operator only.")
    quarantined_at: dt.datetime | None = Field(
        default=None,
        description="When the pool took the phone out because it stopped answering (its state is then "
        "`unhealthy`, or `retired` once replaced); null when not quarantined. It is never leased meanwhile.",
    )
    quarantine_reason: str | None = Field(default=None, description="Why it was quarantined; the operator only.")

    @classmethod
    def from_view(cls, view: DeviceView) -> DeviceOut:
        d, lease = view.device, view.lease
        lease_out = None
        if lease is not None:
            lease_out = DeviceLeaseOut(task_id=lease.task_id, session_id=lease.session_id, holder=lease.holder,
                                       acquired_at=lease.acquired_at, expires_at=lease.expires_at)  # fmt: skip
        return cls(
            id=d.id, provider=d.provider, state=d.state, profile=d.profile,
            # Which pool (host) runs it is a fleet detail, like its serial: the operator only.
            labels=d.labels if view.internal else {k: v for k, v in (d.labels or {}).items() if k != POOL_LABEL},
            health_checked_at=d.health_checked_at, updated_at=d.updated_at, lease=lease_out,
            serial=d.serial if view.internal else None, last_error=d.last_error if view.internal else None,
            quarantined_at=d.quarantined_at,
            quarantine_reason=d.quarantine_reason if view.internal else None,
        )  # fmt: skip


class DeviceCreate(BaseModel):
    """Register a static ADB phone (the operator): provider ``static``, state ``provisioning`` until the pool checks it."""

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
