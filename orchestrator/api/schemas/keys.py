"""Request and response bodies of the API key routes (``/api/v1/api-keys``)."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.db import ApiKey, User, UserRole

__all__ = ["ApiKeyCreate", "ApiKeyOut", "IssuedKeyOut", "RoleIn", "UserOut"]


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


class RoleIn(BaseModel):
    """A user's new role."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"role": "admin"}]})

    role: UserRole


class UserOut(BaseModel):
    id: uuid.UUID
    name: str
    role: UserRole
