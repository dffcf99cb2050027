"""Admin routes: the tenant's API keys (list, issue, revoke) and its users' roles; docs/security.md,
"Roles", has the rules."""

from __future__ import annotations

import uuid
from typing import Any

from fastapi import APIRouter

from orchestrator.api.deps import AdminOnly, ApiKeyServiceDep, CurrentPrincipal
from orchestrator.api.schemas import ApiKeyCreate, ApiKeyOut, ErrorOut, IssuedKeyOut
from orchestrator.api.schemas.keys import RoleIn, UserOut

__all__ = ["router", "users_router"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing, invalid or revoked API key"},
    403: {"model": ErrorOut, "description": "Not an admin key; or an operator's key, which only the operator issues and revokes"},
    422: {"model": ErrorOut, "description": "Invalid input"},
}

router = APIRouter(prefix="/api/v1/api-keys", tags=["api keys (admin)"], dependencies=[AdminOnly],
                   responses=_ERRORS)  # fmt: skip
users_router = APIRouter(prefix="/api/v1/users", tags=["api keys (admin)"], dependencies=[AdminOnly],
                         responses=_ERRORS)  # fmt: skip


@router.get("", summary="List your tenant's keys")
async def list_keys(principal: CurrentPrincipal, keys: ApiKeyServiceDep) -> list[ApiKeyOut]:
    """Every key, newest first, without secrets."""
    return [ApiKeyOut.from_row(key, user) for key, user in await keys.list(principal)]


@router.post("", status_code=201, summary="Issue a key")
async def issue_key(body: ApiKeyCreate, principal: CurrentPrincipal, keys: ApiKeyServiceDep) -> IssuedKeyOut:
    """A new key for a user of your tenant; the secret is in `key`, shown only this once. Role
    `operator` only with the operator's key."""
    issued = await keys.issue(principal, user_name=body.user, role=body.role, name=body.name)
    return IssuedKeyOut(**ApiKeyOut.from_row(issued.row, issued.user).model_dump(), key=issued.key)


@router.post(
    "/{key_id}/revoke",
    summary="Revoke a key",
    responses={
        404: {"model": ErrorOut, "description": "No such key in your tenant"},
        409: {"model": ErrorOut, "description": "`last_admin_key`: the tenant's last working admin key"},
    },
)
async def revoke_key(key_id: uuid.UUID, principal: CurrentPrincipal, keys: ApiKeyServiceDep) -> ApiKeyOut:
    """The key stops working at once on this process and within seconds on the others. The tenant's
    last working admin key cannot be revoked (409 `last_admin_key`): issue another admin key first."""
    return ApiKeyOut.from_row(*await keys.revoke(principal, key_id))


@users_router.put(
    "/{user_name}/role",
    summary="Change a user's role",
    responses={
        404: {"model": ErrorOut, "description": "No such user in your tenant"},
        409: {"model": ErrorOut, "description": "`last_admin_key`: the user holds the tenant's last admin keys"},
    },
)
async def set_role(user_name: str, body: RoleIn, principal: CurrentPrincipal, keys: ApiKeyServiceDep) -> UserOut:
    """`member` ↔ `admin` within your tenant; the operator's role is given and taken by the operator
    only. An admin holding the tenant's last working admin keys stays one (409). Audited (`user.role`)."""
    user = await keys.set_role(principal, user_name, body.role)
    return UserOut(id=user.id, name=user.name, role=user.role)
