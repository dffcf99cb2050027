"""Device routes: the shared pool's phones and their state; the operator registers, drains, undrains and
retires phones (a tenant's admin cannot: the pool is every tenant's)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query

from orchestrator.api.deps import CurrentPrincipal, DeviceServiceDep, OperatorOnly
from orchestrator.api.schemas import DeviceCreate, DeviceOut, ErrorOut, PageOut
from orchestrator.db import DeviceState

__all__ = ["router"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing, invalid or revoked API key"},
    404: {"model": ErrorOut, "description": "No such device"},
    422: {"model": ErrorOut, "description": "Invalid input"},
}

router = APIRouter(prefix="/api/v1/devices", tags=["devices"], responses=_ERRORS)


@router.get("", summary="List devices")
async def list_devices(
    principal: CurrentPrincipal,
    devices: DeviceServiceDep,
    state: Annotated[DeviceState | None, Query(description="Only devices in this state.")] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    cursor: Annotated[str | None, Query(max_length=512)] = None,
) -> PageOut[DeviceOut]:
    """Every phone's state; lease details only for your own tenant's leases; `serial`, `last_error`
    and `quarantine_reason` only for the operator."""
    page = await devices.list(principal, state=state, limit=limit, cursor=cursor)
    return PageOut[DeviceOut](
        items=[DeviceOut.from_view(v) for v in page.items], next_cursor=page.next_cursor
    )


@router.get("/{device_id}", summary="Read a device")
async def get_device(
    device_id: uuid.UUID, principal: CurrentPrincipal, devices: DeviceServiceDep
) -> DeviceOut:
    """One phone."""
    return DeviceOut.from_view(await devices.get(principal, device_id))


# The operator only: OperatorOnly answers 403 to admins and members before the route runs.
_ADMIN_ERRORS: dict[int | str, dict[str, Any]] = {
    403: {"model": ErrorOut, "description": "Not the operator's API key"},
    409: {"model": ErrorOut, "description": "The device's state does not allow it; `message` says why"},
}


@router.post(
    "",
    status_code=201,
    summary="Register a static ADB phone (operator)",
    responses=_ADMIN_ERRORS,
    dependencies=[OperatorOnly],
)
async def register_device(
    body: DeviceCreate, principal: CurrentPrincipal, devices: DeviceServiceDep
) -> DeviceOut:
    """A phone PhoneFleet did not make (a handset on USB or TCP, a long-lived redroid): provider
    `static`, state `provisioning`. `phonefleet pool` connects it, presses HOME, health-checks it
    against `profile` and makes it `idle` (or `unhealthy` with `last_error`). 409 if the serial is in
    the pool already."""
    view = await devices.register(
        principal, serial=body.serial, profile=body.profile.model_dump(mode="json"), labels=body.labels
    )
    return DeviceOut.from_view(view)


@router.post(
    "/{device_id}/drain",
    summary="Take a device out of service (operator)",
    responses=_ADMIN_ERRORS,
    dependencies=[OperatorOnly],
)
async def drain_device(
    device_id: uuid.UUID, principal: CurrentPrincipal, devices: DeviceServiceDep
) -> DeviceOut:
    """No new leases (`labels.drain` is true); a current lease runs to its end, and the phone is then
    reset and kept idle but never leased, until undrained."""
    return DeviceOut.from_view(await devices.drain(principal, device_id))


@router.post(
    "/{device_id}/undrain",
    summary="Put a drained device back in service (operator)",
    responses=_ADMIN_ERRORS,
    dependencies=[OperatorOnly],
)
async def undrain_device(
    device_id: uuid.UUID, principal: CurrentPrincipal, devices: DeviceServiceDep
) -> DeviceOut:
    """Removes the drain label; an idle phone can be leased at once."""
    return DeviceOut.from_view(await devices.undrain(principal, device_id))


@router.post(
    "/{device_id}/retire",
    summary="Remove a registered phone from the pool (operator)",
    responses=_ADMIN_ERRORS,
    dependencies=[OperatorOnly],
)
async def retire_device(
    device_id: uuid.UUID, principal: CurrentPrincipal, devices: DeviceServiceDep
) -> DeviceOut:
    """A `static` (registered) phone that is not leased → `retired` now; leased → 409 (drain it
    first). Phones of the `sim` and `static_adb` providers → 409: their pool manager would bring
    them back; drain them instead. Retiring a retired device answers it unchanged."""
    return DeviceOut.from_view(await devices.retire(principal, device_id))
