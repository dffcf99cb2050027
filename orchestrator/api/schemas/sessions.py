"""Request and response bodies of the session routes (``/api/v1/sessions``)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.db import SessionState
from orchestrator.services.sessions import SessionSpec, SessionView

__all__ = ["AdbOut", "SessionCreate", "SessionDeviceOut", "SessionOut"]

_SESSION_ID = "7c9e6679-7425-40de-944b-e07fc1f90ae7"
_DEVICE_ID = "5d0e8f57-0a3c-4d42-8c55-3b8f7f1f2a01"
_TIME = "2025-01-31T12:10:00.123456Z"


class SessionCreate(SessionSpec):
    """Hold a phone for yourself or your own agent: every field is optional."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"ttl_s": 600, "device_profile": {"android": "13"}, "wait_s": 10}]},
    )


class SessionDeviceOut(BaseModel):
    """The session's phone."""

    id: uuid.UUID
    serial: str | None = Field(
        default=None, description="What the pool's adb calls the phone; shown to the operator only."
    )
    profile: dict[str, Any]


class AdbOut(BaseModel):
    """How to reach the phone with adb while the session is active: only through the API's
    authenticated tunnel (docs/security.md, "ADB tunnel"); the phone's own address is never shown
    to a tenant."""

    tunnel: str = Field(description="The tunnel's WebSocket path on this API (send your API key).")
    command: str = Field(description="Opens the tunnel on a local port and prints the `adb connect` to run.")


class SessionOut(BaseModel):
    """A session as the API shows it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": _SESSION_ID, "state": "active", "ttl_s": 600,
                    "device": {"id": _DEVICE_ID, "serial": None,
                               "profile": {"width": 1080, "height": 2400, "density": 420, "android": "13",
                                           "apps": []}},
                    "adb": {"tunnel": f"/api/v1/sessions/{_SESSION_ID}/adb",
                            "command": f"phonefleet adb {_SESSION_ID}"},
                    "created_at": "2025-01-31T12:00:00.123456Z", "expires_at": _TIME, "closed_at": None,
                    "keepalive_url": f"/api/v1/sessions/{_SESSION_ID}/keepalive",
                }
            ]
        }
    )  # fmt: skip

    id: uuid.UUID
    state: SessionState
    ttl_s: int = Field(description="Seconds each keepalive (and the creation) grants.")
    device: SessionDeviceOut
    adb: AdbOut | None = Field(description="Set while the session is active.")
    created_at: dt.datetime
    expires_at: dt.datetime | None = Field(description="Ends here unless kept alive (POST …/keepalive).")
    closed_at: dt.datetime | None = Field(description="When it was closed or expired.")
    keepalive_url: str
    personal_phone_id: uuid.UUID | None = Field(default=None, description="The personal phone it holds, if any.")

    @classmethod
    def from_view(cls, view: SessionView, *, internal: bool = False) -> SessionOut:
        """``internal`` (the operator's view) adds the phone's serial."""
        s, d = view.session, view.device
        assert d is not None, "reads show only sessions that got a phone"
        adb = None
        if s.state == SessionState.ACTIVE:
            adb = AdbOut(tunnel=f"/api/v1/sessions/{s.id}/adb", command=f"phonefleet adb {s.id}")
        return cls(
            id=s.id, state=s.state, ttl_s=s.ttl_s,
            device=SessionDeviceOut(id=d.id, serial=d.serial if internal else None, profile=d.profile), adb=adb,
            created_at=s.created_at, expires_at=s.expires_at, closed_at=s.closed_at,
            keepalive_url=f"/api/v1/sessions/{s.id}/keepalive", personal_phone_id=s.personal_phone_id,
        )  # fmt: skip
