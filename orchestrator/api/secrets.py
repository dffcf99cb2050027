"""``/api/v1/secrets``: the tenant's secrets vault (docs/api.md, "Secrets"; docs/security.md).

Write-only: a value goes in with ``POST`` (create) or ``PUT`` (rotate) and never comes back; the
list and the single read give names and times. Storing, rotating and deleting are admin routes;
any key of the tenant may list the names (its tasks' model is told them too).
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Path, Response

from orchestrator.api.deps import AdminOnly, CurrentPrincipal, VaultServiceDep
from orchestrator.api.schemas import ErrorOut
from orchestrator.api.schemas.secrets import SecretCreate, SecretOut, SecretRotate

__all__ = ["router"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing, invalid or revoked API key"},
    422: {"model": ErrorOut, "description": "Invalid input; `message` says which field and why (never the value)"},
}
_ADMIN: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorOut, "description": "Not an admin key"},
    409: {"model": ErrorOut, "description": "No vault key (`vault.key` unset in prod), or the name is taken"},
}
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ErrorOut, "description": "No such secret in your tenant"}}

router = APIRouter(prefix="/api/v1/secrets", tags=["secrets"], responses=_ERRORS)

Name = Path(max_length=200, description="The secret's name")


@router.post("", status_code=201, summary="Store a secret", dependencies=[AdminOnly], responses=_ADMIN)
async def create_secret(body: SecretCreate, principal: CurrentPrincipal, vault: VaultServiceDep) -> SecretOut:
    """The value is encrypted at rest and never returned; the agent types it when the model asks
    `Type_Secret(name=…)` with this name, on a task of your tenant."""
    return SecretOut.from_row(await vault.create(principal, body))


@router.get("", summary="List your tenant's secrets (names only)")
async def list_secrets(principal: CurrentPrincipal, vault: VaultServiceDep) -> list[SecretOut]:
    return [SecretOut.from_row(row) for row in await vault.list(principal)]


@router.get("/{secret_name}", summary="One secret (its name and times)", responses=_NOT_FOUND)
async def get_secret(principal: CurrentPrincipal, vault: VaultServiceDep, secret_name: str = Name) -> SecretOut:
    return SecretOut.from_row(await vault.get(principal, secret_name))


@router.put("/{secret_name}", summary="Rotate: give a secret a new value", dependencies=[AdminOnly],
            responses={**_ADMIN, **_NOT_FOUND})  # fmt: skip
async def rotate_secret(
    body: SecretRotate, principal: CurrentPrincipal, vault: VaultServiceDep, secret_name: str = Name
) -> SecretOut:
    """The new value is typed from the next `Type_Secret` on; the old one is gone."""
    return SecretOut.from_row(await vault.rotate(principal, secret_name, body))


@router.delete("/{secret_name}", status_code=204, summary="Delete a secret", dependencies=[AdminOnly],
               responses={**_ADMIN, **_NOT_FOUND})  # fmt: skip
async def delete_secret(principal: CurrentPrincipal, vault: VaultServiceDep, secret_name: str = Name) -> Response:
    await vault.delete(principal, secret_name)
    return Response(status_code=204)
