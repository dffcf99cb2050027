"""Response bodies of the audit log (``GET /api/v1/audit``)."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.db import AuditEntry

__all__ = ["AuditEntryOut"]


class AuditEntryOut(BaseModel):
    """One operator's or admin's action."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "id": "3f1c0f0e-52f7-4c1e-9a41-0c1c2d7f9b11", "created_at": "2025-01-31T12:00:00.123456Z",
                    "tenant_id": "9b2e4a3c-1d2f-4e5a-8b6c-7d8e9f0a1b2c",
                    "key_id": "1a2b3c4d-5e6f-4a1b-8c2d-3e4f5a6b7c8d",
                    "user_id": "2b3c4d5e-6f7a-4b1c-9d2e-4f5a6b7c8d9e", "role": "operator",
                    "action": "device.drain", "target": "device:5d0e8f57-0a3c-4d42-8c55-3b8f7f1f2a01",
                    "detail": {"state": "leased"},
                }
            ]
        }
    )  # fmt: skip

    id: uuid.UUID
    created_at: dt.datetime
    tenant_id: uuid.UUID | None = Field(description="The actor's tenant; null for `phonefleet admin`.")
    key_id: uuid.UUID | None = Field(description="The actor's API key; null for `phonefleet admin`.")
    user_id: uuid.UUID | None
    role: str = Field(description="The actor's role then: operator, admin, member, or cli.")
    action: str = Field(description="What was done, e.g. `device.drain`, `api_key.revoke`.")
    target: str = Field(description="What it was done to, as `kind:id`.")
    detail: dict[str, Any]

    @classmethod
    def from_row(cls, row: AuditEntry) -> AuditEntryOut:
        return cls(
            id=row.id, created_at=row.created_at, tenant_id=row.tenant_id, key_id=row.key_id,
            user_id=row.user_id, role=row.role, action=row.action, target=row.target, detail=row.detail or {},
        )  # fmt: skip
