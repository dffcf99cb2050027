"""Bodies of the tenant routes (``/api/v1/tenant``): its retention and its deletion."""

from __future__ import annotations

import uuid

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.db import Tenant
from orchestrator.services.tenants import TenantDeletion

__all__ = ["TenantDeletionOut", "TenantOut", "TenantUpdate"]


class TenantOut(BaseModel):
    """The caller's tenant."""

    id: uuid.UUID
    name: str
    retention_days: int | None = Field(description="Its own retention (days), or null: the deployment's.")
    effective_retention_days: int | None = Field(
        description="Days its finished tasks (steps, screenshots) and events are kept now: the shorter of "
        "its own and the deployment's storage.retention_days; null: until deleted."
    )

    @classmethod
    def of(cls, row: Tenant, effective: int | None) -> TenantOut:
        return cls(
            id=row.id, name=row.name, retention_days=row.retention_days, effective_retention_days=effective
        )


class TenantUpdate(BaseModel):
    """A new retention for the tenant (admins)."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"retention_days": 30}]})

    retention_days: int | None = Field(
        ge=1, le=36500, description="Days to keep finished tasks and events; null: the deployment's."
    )


class TenantDeletionOut(BaseModel):
    """What ``DELETE /api/v1/tenant`` removed."""

    id: uuid.UUID
    name: str
    tasks_deleted: int
    personal_phones_pending: int = Field(
        description="Personal phones whose data the pool removes next; the tenant's last rows go after."
    )
    finished: bool = Field(description="Nothing of the tenant is left (it had no personal phones).")

    @classmethod
    def of(cls, done: TenantDeletion) -> TenantDeletionOut:
        return cls(
            id=done.tenant_id, name=done.name, tasks_deleted=done.tasks,
            personal_phones_pending=done.personal_phones_pending, finished=done.finished,
        )  # fmt: skip
