"""``/api/v1/usage`` (a tenant's usage by day and its limits) and ``/api/v1/tenants/{id}/limits``.

Thin routes over ``services/usage.py``; docs/api.md, "Quotas and usage".
"""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request

from orchestrator.api.deps import CurrentPrincipal, SettingsDep
from orchestrator.errors import NotFound
from orchestrator.services.auth import Principal, require_operator
from orchestrator.services.usage import MAX_USAGE_DAYS, LimitsSpec, UsageService

__all__ = ["router"]

router = APIRouter(prefix="/api/v1", tags=["usage"])


async def _usage_service(request: Request, settings: SettingsDep) -> UsageService:
    return UsageService(request.app.state.services.db, settings.quotas)


UsageServiceDep = Annotated[UsageService, Depends(_usage_service)]


def _own_tenant(principal: Principal, tenant_id: uuid.UUID) -> None:
    # Another tenant's limits are not even said to exist; the operator sees every tenant's.
    if tenant_id != principal.tenant_id and not principal.is_operator:
        raise NotFound(f"no tenant {tenant_id}")


@router.get("/usage", summary="Your tenant's usage by day, what it holds now, and its limits")
async def get_usage(
    principal: CurrentPrincipal,
    service: UsageServiceDep,
    days: Annotated[int, Query(ge=1, le=MAX_USAGE_DAYS, description="UTC days, today included.")] = 7,
) -> dict[str, Any]:
    """Tasks created, phone-minutes and model tokens per UTC day; ``now``: tasks running, sessions
    open, phones held, personal phones, phone-minutes used today; ``limits``: those in force (null:
    unlimited). Any key of the tenant may read it."""
    return await service.usage(principal.tenant_id, days)


@router.get("/tenants/{tenant_id}/limits", summary="A tenant's limits")
async def get_limits(
    tenant_id: uuid.UUID, principal: CurrentPrincipal, service: UsageServiceDep
) -> dict[str, Any]:
    """The limits in force, the tenant's own overrides and the deployment's defaults."""
    _own_tenant(principal, tenant_id)
    return await service.limits(tenant_id)


@router.put("/tenants/{tenant_id}/limits", summary="Set a tenant's limits")
async def put_limits(
    tenant_id: uuid.UUID, body: LimitsSpec, principal: CurrentPrincipal, service: UsageServiceDep
) -> dict[str, Any]:
    """Replace the tenant's overrides: a name left out takes the deployment's setting, null is
    unlimited. The operator's only (a tenant's own admin gets 403), for any tenant; audited
    (`tenant.limits`)."""
    _own_tenant(principal, tenant_id)
    require_operator(principal, "only the operator changes a tenant's limits")
    return await service.set_limits(principal, tenant_id, body)
