"""Request and response bodies of the personal phone routes (``/api/v1/personal-phones``)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.db import PersonalPhone, PersonalPhoneState
from orchestrator.services.personal_phones import PersonalPhoneSpec, PersonalPhoneUpdate

__all__ = ["PersonalPhoneCreate", "PersonalPhoneOut", "PersonalPhoneRename"]

_ID = "3f1d2a9c-5b7e-4c21-9a0d-6e8f7b2c1d40"


class PersonalPhoneCreate(PersonalPhoneSpec):
    """A phone of your own that keeps its logins and apps between tasks."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"name": "work phone", "device_profile": {"android": "13"}}]},
    )


class PersonalPhoneRename(PersonalPhoneUpdate):
    """A new name, a new app allowlist, or both."""

    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={
            "examples": [{"name": "old work phone"}, {"allowed_apps": ["com.phonefleet.bank"]}]
        },
    )


class PersonalPhoneOut(BaseModel):
    """A personal phone as the API shows it."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": _ID, "name": "work phone", "state": "asleep", "user_id": _ID,
                    "device_profile": None, "device_id": None, "last_used_at": None, "wake_ms": None,
                    "last_error": None, "created_at": "2025-01-31T12:00:00.123456Z",
                }
            ]
        }
    )  # fmt: skip

    id: uuid.UUID
    name: str
    state: PersonalPhoneState = Field(
        description="asleep (no device runs it), waking, ready (a device runs it, idle), in_use, "
        "sleeping (its device is being stopped), failed (its last wake failed; the next use retries)."
    )
    user_id: uuid.UUID = Field(description="Its owner.")
    device_profile: dict[str, Any] | None
    device_id: uuid.UUID | None = Field(description="The device running it now (waking, ready, in_use).")
    last_used_at: dt.datetime | None = Field(description="When its last task or session let it go.")
    wake_ms: int | None = Field(description="How long its last wake took, in milliseconds.")
    last_error: str | None = Field(description="Why its last wake failed (state failed).")
    allowed_apps: list[str] | None = Field(
        default=None,
        description="The only apps tasks on it may use (besides the launcher and system UI); null: any.",
    )
    home_pool: str | None = Field(
        default=None,
        description="The pool whose host keeps its data (redroid: its volume), set by its first wake; "
        "only that pool wakes it. The operator only.",
    )
    created_at: dt.datetime

    @classmethod
    def of(cls, row: PersonalPhone, *, internal: bool = False) -> PersonalPhoneOut:
        """``internal`` (the operator's view) adds its home pool, a fleet detail like a serial."""
        running = row.state in (
            PersonalPhoneState.WAKING,
            PersonalPhoneState.READY,
            PersonalPhoneState.IN_USE,
        )
        return cls(
            id=row.id, name=row.name, state=row.state, user_id=row.user_id, device_profile=row.device_profile,
            device_id=row.device_id if running else None, last_used_at=row.last_used_at, wake_ms=row.wake_ms,
            last_error=row.last_error, created_at=row.created_at, allowed_apps=row.allowed_apps,
            home_pool=row.home_pool if internal else None,
        )  # fmt: skip
