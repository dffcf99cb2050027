"""Request and response bodies of the operator's tenant routes (``/api/v1/tenants``, the tenant registry)."""

from __future__ import annotations

import datetime as dt
import uuid

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.api.schemas.keys import IssuedKeyOut

__all__ = ["TenantCreate", "TenantCreated", "TenantEntryOut"]


class TenantCreate(BaseModel):
    """A new tenant, and the user who administers it."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "acme", "admin_user": "alice"}]})

    name: str = Field(min_length=1, max_length=200, pattern=r"^[\w .@+-]+$")
    admin_user: str = Field(default="admin", min_length=1, max_length=200, pattern=r"^[\w.@+-]+$")


class TenantEntryOut(BaseModel):
    id: uuid.UUID
    name: str
    created_at: dt.datetime


class TenantCreated(TenantEntryOut):
    """The tenant and its first admin key: ``admin_key.key`` is shown this once."""

    admin_key: IssuedKeyOut
