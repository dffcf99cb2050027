"""The operator's tenant routes: list the deployment's tenants, make one with its first admin key."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from orchestrator.api.deps import CurrentPrincipal, OperatorOnly
from orchestrator.api.schemas import ErrorOut, PageOut
from orchestrator.api.schemas.keys import ApiKeyOut, IssuedKeyOut
from orchestrator.api.schemas.tenant_registry import TenantCreate, TenantCreated, TenantEntryOut
from orchestrator.services.tenant_registry import TenantRegistry

__all__ = ["router"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing, invalid or revoked API key"},
    403: {"model": ErrorOut, "description": "Not the operator's key"},
    422: {"model": ErrorOut, "description": "Invalid input"},
}

router = APIRouter(prefix="/api/v1/tenants", tags=["tenants (operator)"], dependencies=[OperatorOnly],
                   responses=_ERRORS)  # fmt: skip


async def _tenants(request: Request) -> TenantRegistry:
    return TenantRegistry(request.app.state.services.db)  # stateless: one per request


TenantRegistryDep = Annotated[TenantRegistry, Depends(_tenants)]


@router.get("", summary="List tenants, newest first")
async def list_tenants(
    principal: CurrentPrincipal,
    tenants: TenantRegistryDep,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> PageOut[TenantEntryOut]:
    page = await tenants.list(principal, limit=limit, cursor=cursor)
    return PageOut[TenantEntryOut](
        items=[TenantEntryOut(id=t.id, name=t.name, created_at=t.created_at) for t in page.items],
        next_cursor=page.next_cursor,
    )


@router.post("", status_code=201, summary="Make a tenant and its first admin key",
             responses={409: {"model": ErrorOut, "description": "`tenant_exists`: the name is taken"}})  # fmt: skip
async def create_tenant(body: TenantCreate, principal: CurrentPrincipal, tenants: TenantRegistryDep) -> TenantCreated:
    """The tenant and a key for its admin `admin_user`, whose secret (`admin_key.key`) is shown only
    here; hand it to the tenant, whose admins manage the rest. Audited (`tenant.create`)."""
    tenant, issued = await tenants.create(principal, name=body.name, admin_user=body.admin_user)
    key = IssuedKeyOut(**ApiKeyOut.from_row(issued.row, issued.user).model_dump(), key=issued.key)
    return TenantCreated(id=tenant.id, name=tenant.name, created_at=tenant.created_at, admin_key=key)
