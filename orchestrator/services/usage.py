"""What a tenant used and may use: usage by UTC day, its limits in force, and changing them.

Usage (``GET /api/v1/usage``) is counted from the rows the work left, so it adds up to what ran:

- **tasks**: tasks created that day (by hand or by a schedule), and how many of them have ended,
  succeeded or failed (``failed`` counts ``timed_out`` too);
- **phone_minutes**: the tenant's leases (tasks' and sessions' alike) from lease to release, split
  at midnight UTC; a lease still held counts until now;
- **model tokens**: the prompt and completion tokens of its tasks' steps, by the day of the step.

Limits are ``settings.quotas`` with the tenant's own overrides on top (``tenants.limits``;
``orchestrator/db/quotas.py`` enforces them). Only the operator changes a tenant's limits (a
tenant's own admin raising them would make them no limits), and the change is audited
(``tenant.limits``); a tenant's keys read their own.
"""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import select, update

from orchestrator.db import Step, Task, TaskStatus, Tenant, utcnow
from orchestrator.db.database import Database
from orchestrator.db.quotas import LIMIT_NAMES, Limits, day_start, holdings, lease_seconds_by_day
from orchestrator.errors import NotFound
from orchestrator.services.audit import record_audit
from orchestrator.services.auth import Principal

__all__ = ["MAX_USAGE_DAYS", "LimitsSpec", "UsageService"]

MAX_USAGE_DAYS = 92


class LimitsSpec(BaseModel):
    """A tenant's own limits (``PUT /api/v1/tenants/{id}/limits``): a name left out takes the
    deployment's setting (``quotas.*``), null is unlimited, 0 allows none."""

    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"max_concurrent_tasks": 1}]})

    max_concurrent_tasks: int | None = Field(default=None, ge=0, le=100_000)
    max_concurrent_devices: int | None = Field(default=None, ge=0, le=100_000)
    max_personal_phones: int | None = Field(default=None, ge=0, le=100_000)
    max_phone_minutes_per_day: int | None = Field(default=None, ge=0, le=24 * 60 * 100_000)


class UsageService:
    """Usage and limits of one tenant at a time."""

    def __init__(self, db: Database, quotas: Any) -> None:
        self.db = db
        self.quotas = quotas  # settings.quotas: the defaults

    async def limits(self, tenant_id: uuid.UUID) -> dict[str, Any]:
        """The limits in force, the tenant's own overrides, and the deployment's defaults."""
        async with self.db.transaction() as db_session:
            overrides = await db_session.scalar(select(Tenant.limits).where(Tenant.id == tenant_id))
        return {
            "limits": Limits.resolve(self.quotas, overrides).as_dict(),
            "overrides": dict(overrides or {}),
            "defaults": Limits.resolve(self.quotas, None).as_dict(),
        }

    async def set_limits(self, principal: Principal, tenant_id: uuid.UUID, spec: LimitsSpec) -> dict[str, Any]:
        """Replace the tenant's overrides with the names ``spec`` sets (audited); raises ``NotFound``."""
        overrides = {name: getattr(spec, name) for name in LIMIT_NAMES if name in spec.model_fields_set}
        async with self.db.transaction(write=True) as db_session:
            before = await db_session.scalar(select(Tenant.limits).where(Tenant.id == tenant_id))
            result = await db_session.execute(
                update(Tenant).where(Tenant.id == tenant_id).values(limits=overrides or None)
                .execution_options(synchronize_session=False)
            )  # fmt: skip
            if not result.rowcount:
                raise NotFound(f"no tenant {tenant_id}")
            await record_audit(db_session, principal, "tenant.limits", target=f"tenant:{tenant_id}",
                               detail={"before": before, "after": overrides or None})  # fmt: skip
        return await self.limits(tenant_id)

    async def usage(self, tenant_id: uuid.UUID, days: int) -> dict[str, Any]:
        """The tenant's usage over the last ``days`` UTC days (today included), newest last, with
        totals, what it holds now, and its limits."""
        now = utcnow()
        since = day_start(now) - dt.timedelta(days=days - 1)
        dates = [(since + dt.timedelta(days=i)).date() for i in range(days)]
        rows = {d: {"day": d.isoformat(), "tasks": 0, "tasks_succeeded": 0, "tasks_failed": 0,
                    "phone_minutes": 0.0, "prompt_tokens": 0, "completion_tokens": 0} for d in dates}  # fmt: skip
        async with self.db.transaction() as db_session:
            tasks = await db_session.execute(
                select(Task.created_at, Task.status).where(
                    Task.tenant_id == tenant_id, Task.created_at >= since
                )
            )
            for created_at, status in tasks:
                row = rows.get(created_at.astimezone(dt.UTC).date())
                if row is None:
                    continue
                row["tasks"] += 1
                if status == TaskStatus.SUCCEEDED:
                    row["tasks_succeeded"] += 1
                elif status in (TaskStatus.FAILED, TaskStatus.TIMED_OUT):
                    row["tasks_failed"] += 1
            steps = await db_session.execute(
                select(Step.created_at, Step.prompt_tokens, Step.completion_tokens)
                .join(Task, Task.id == Step.task_id)
                .where(Task.tenant_id == tenant_id, Step.created_at >= since)
            )
            for created_at, prompt, completion in steps:
                row = rows.get(created_at.astimezone(dt.UTC).date())
                if row is not None:
                    row["prompt_tokens"] += prompt or 0
                    row["completion_tokens"] += completion or 0
            for day, seconds in (await lease_seconds_by_day(db_session, tenant_id, since, now)).items():
                if day in rows:
                    rows[day]["phone_minutes"] = seconds / 60
            held = await holdings(db_session, tenant_id, now)
        listed = [rows[d] for d in dates]
        for row in listed:
            row["phone_minutes"] = round(row["phone_minutes"], 3)
        totals = {key: sum(r[key] for r in listed) for key in listed[0] if key != "day"}
        totals["phone_minutes"] = round(totals["phone_minutes"], 3)
        return {
            "tenant_id": str(tenant_id),
            "since": since.isoformat(),
            "days": listed,
            "totals": totals,
            "now": {
                "tasks": held.tasks,
                "sessions": held.sessions,
                "devices": held.devices,
                "personal_phones": held.personal_phones,
                "phone_minutes_today": round(held.phone_seconds_today / 60, 3),
            },
            **(await self.limits(tenant_id)),
        }
