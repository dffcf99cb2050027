"""Tenant routes: the caller's tenant — its retention, an export of all its data, its deletion
(docs/api.md, "Tenant"; docs/security.md, "Encryption at rest and retention")."""

from __future__ import annotations

import datetime as dt
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import StreamingResponse

from orchestrator.api.deps import CurrentPrincipal, StepServiceDep, TenantServiceDep
from orchestrator.api.schemas import ErrorOut, StepOut, TaskOut
from orchestrator.api.schemas.personal_phones import PersonalPhoneOut
from orchestrator.api.schemas.schedules import ScheduleOut
from orchestrator.api.schemas.tenants import TenantDeletionOut, TenantOut, TenantUpdate
from orchestrator.services.tenants import tenant_zip

__all__ = ["router"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing, invalid or revoked API key"},
    403: {"model": ErrorOut, "description": "Not an admin of the tenant (reading it is for everyone)"},
}

router = APIRouter(prefix="/api/v1/tenant", tags=["tenant"], responses=_ERRORS)


@router.get("", summary="Read your tenant")
async def get_tenant(principal: CurrentPrincipal, tenants: TenantServiceDep) -> TenantOut:
    """Its name and how long its data is kept."""
    row = await tenants.get(principal)
    return TenantOut.of(row, tenants.retention_days(row))


@router.patch(
    "",
    summary="Set your tenant's retention",
    responses={422: {"model": ErrorOut, "description": "Above the deployment's storage.retention_days"}},
)
async def update_tenant(
    body: TenantUpdate, principal: CurrentPrincipal, tenants: TenantServiceDep
) -> TenantOut:
    """Admins: finished tasks (with their steps and screenshots) and events older than
    `retention_days` are removed by the reaper; null: the deployment's `storage.retention_days`."""
    row = await tenants.set_retention(principal, body.retention_days)
    return TenantOut.of(row, tenants.retention_days(row))


@router.get(
    "/export",
    summary="Export all your tenant's data (zip)",
    response_class=StreamingResponse,
    responses={
        200: {"content": {"application/zip": {}}, "description": "tenant.json and one JSONL per kind"}
    },
)
async def export_tenant(
    principal: CurrentPrincipal, tenants: TenantServiceDep, steps: StepServiceDep
) -> StreamingResponse:
    """Admins: `tenant.json` (tenant, users, keys without secrets), `tasks.jsonl`, `steps.jsonl`,
    `screenshots/<task_id>/<index>.jpg` (decrypted), `schedules.jsonl`, `personal_phones.jsonl`,
    `events.jsonl`, `webhook_subscriptions.jsonl` (without secrets); see docs/api.md."""
    snap = await tenants.snapshot(principal)
    now = dt.datetime.now(dt.UTC)
    head = {
        "format": 1,
        "exported_at": now.isoformat(),
        "tenant": TenantOut.of(snap.tenant, tenants.retention_days(snap.tenant)).model_dump(mode="json"),
        "users": [
            {"id": str(u.id), "name": u.name, "role": u.role.value, "created_at": u.created_at.isoformat()}
            for u in snap.users
        ],
        "api_keys": [
            {
                "id": str(k.id), "name": k.name, "prefix": k.prefix, "user_id": str(k.user_id),
                "created_at": k.created_at.isoformat(), "last_used_at": _iso(k.last_used_at),
                "revoked_at": _iso(k.revoked_at),
            }
            for k in snap.api_keys
        ],
    }  # fmt: skip
    screenshots, step_lines = [], []
    for step in snap.steps:
        line = StepOut.from_row(step).model_dump(mode="json")
        line.pop("screenshot_url", None)
        path = steps.screenshot_path(step)
        name = f"screenshots/{step.task_id}/{step.index}.jpg" if path is not None else None
        if path is not None:
            screenshots.append((name, path))
        step_lines.append({"task_id": str(step.task_id), **line, "screenshot": name})
    parts = [
        ("tasks.jsonl", [TaskOut.from_row(t).model_dump(mode="json") for t in snap.tasks]),
        ("steps.jsonl", step_lines),
        ("schedules.jsonl", [ScheduleOut.from_row(s).model_dump(mode="json") for s in snap.schedules]),
        ("personal_phones.jsonl", [PersonalPhoneOut.of(p).model_dump(mode="json") for p in snap.personal_phones]),
        ("events.jsonl", [
            {"id": e.id, "created_at": e.created_at.isoformat(), "type": e.type,
             "task_id": None if e.task_id is None else str(e.task_id), "payload": e.payload}
            for e in snap.events
        ]),
        ("webhook_subscriptions.jsonl", [
            {"id": str(w.id), "created_at": w.created_at.isoformat(), "url": w.url, "events": w.events}
            for w in snap.subscriptions
        ]),
    ]  # fmt: skip
    return StreamingResponse(
        tenant_zip(head, parts, screenshots, read=steps.read, now=now),
        media_type="application/zip",
        headers={
            "Content-Disposition": f'attachment; filename="tenant-{snap.tenant.id}.zip"',
            "Cache-Control": "no-store",
        },
    )


@router.delete(
    "",
    status_code=202,
    summary="Delete all your tenant's data",
    responses={
        409: {
            "model": ErrorOut,
            "description": "A task has not ended, a session is open or a personal phone in use",
        },
        422: {"model": ErrorOut, "description": "`confirm` is not the tenant's name"},
    },
)
async def delete_tenant(
    principal: CurrentPrincipal,
    tenants: TenantServiceDep,
    confirm: Annotated[
        str | None, Query(max_length=200, description="The tenant's name, repeated: this cannot be undone.")
    ] = None,
) -> TenantDeletionOut:
    """Admins; irreversible. Tasks, steps, screenshots, events, schedules, sessions and webhook
    subscriptions go at once and every key of the tenant is revoked (this one too); the pool removes
    its personal phones' data next, then its users, keys and the tenant itself go."""
    return TenantDeletionOut.of(await tenants.delete(principal, confirm))


def _iso(value: dt.datetime | None) -> str | None:
    return None if value is None else value.isoformat()
