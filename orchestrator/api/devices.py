"""Device routes: the shared pool's phones and their state."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query

from orchestrator.api.deps import CurrentPrincipal, DeviceServiceDep
from orchestrator.api.schemas import DeviceOut, ErrorOut, PageOut
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
    """Every phone's state; lease details only for your own tenant's leases."""
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
