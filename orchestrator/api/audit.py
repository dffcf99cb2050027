"""The audit log: the operator reads every entry, a tenant's admins read their tenant's."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query

from orchestrator.api.deps import AdminOnly, AuditServiceDep, CurrentPrincipal
from orchestrator.api.schemas import ErrorOut, PageOut
from orchestrator.api.schemas.audit import AuditEntryOut

__all__ = ["router"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing, invalid or revoked API key"},
    403: {"model": ErrorOut, "description": "A member's key, or an admin asking for another tenant"},
    422: {"model": ErrorOut, "description": "Invalid input"},
}

router = APIRouter(prefix="/api/v1/audit", tags=["audit log"], dependencies=[AdminOnly], responses=_ERRORS)


@router.get("", summary="Read the audit log, newest first")
async def list_audit(
    principal: CurrentPrincipal,
    audit: AuditServiceDep,
    action: Annotated[str | None, Query(max_length=64, description="Only this action, e.g. `device.drain`.")] = None,
    tenant_id: Annotated[
        uuid.UUID | None, Query(description="Only this tenant's entries (the operator; an admin may name only its own).")
    ] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Items per page (1–100).")] = 50,
    cursor: Annotated[str | None, Query(max_length=512, description="`next_cursor` of the previous page.")] = None,
) -> PageOut[AuditEntryOut]:
    """What operators and admins did: device registration, drain, undrain and retirement, API key
    issue and revocation. The operator sees every tenant's entries; an admin, its own tenant's."""
    page = await audit.list(principal, action=action, tenant_id=tenant_id, limit=limit, cursor=cursor)
    return PageOut[AuditEntryOut](
        items=[AuditEntryOut.from_row(row) for row in page.items], next_cursor=page.next_cursor
    )
