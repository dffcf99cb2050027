"""Bodies of ``/api/v1/secrets``: a secret goes in with its value and comes out as a name only."""

from __future__ import annotations

import datetime as dt

from pydantic import BaseModel, ConfigDict

from orchestrator.db import Secret
from orchestrator.services.vault import SecretSpec, SecretValue

__all__ = ["SecretCreate", "SecretOut", "SecretRotate"]


class SecretCreate(SecretSpec):
    """Store a secret for the agent to type (``Type_Secret(name=…)``)."""

    model_config = ConfigDict(
        extra="forbid",
        hide_input_in_errors=True,
        json_schema_extra={"examples": [{"name": "bank_password", "value": "correct horse battery staple"}]},
    )


class SecretRotate(SecretValue):
    """Give a secret a new value."""

    model_config = ConfigDict(
        extra="forbid", hide_input_in_errors=True, json_schema_extra={"examples": [{"value": "a new value"}]}
    )


class SecretOut(BaseModel):
    """A secret as the API shows it: its name and times, never its value."""

    name: str
    created_at: dt.datetime
    rotated_at: dt.datetime | None

    @classmethod
    def from_row(cls, row: Secret) -> SecretOut:
        return cls(name=row.name, created_at=row.created_at, rotated_at=row.rotated_at)
