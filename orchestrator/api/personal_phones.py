"""Personal phone routes: a phone of your own whose logins and apps outlive every task on it."""

from __future__ import annotations

import uuid
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from orchestrator.api.deps import CurrentPrincipal, PersonalPhoneServiceDep, PhoneArchivesDep, StepServiceDep
from orchestrator.api.schemas import ErrorOut, PageOut
from orchestrator.api.schemas.personal_phones import (
    PersonalPhoneCreate,
    PersonalPhoneOut,
    PersonalPhoneRename,
)
from orchestrator.api.tasks import image_response

__all__ = ["IMPORT_PATH", "router"]

IMPORT_PATH = "/api/v1/personal-phones/import"  # its body is an archive: api/edges.py gives it its own limit

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing, invalid or revoked API key"},
    404: {
        "model": ErrorOut,
        "description": "No such personal phone of yours (or, for an admin, of your tenant)",
    },
    422: {"model": ErrorOut, "description": "Invalid input; `message` says which field and why"},
}

router = APIRouter(prefix="/api/v1/personal-phones", tags=["personal phones"], responses=_ERRORS)


@router.post(
    "",
    status_code=201,
    summary="Make a personal phone",
    responses={409: {"model": ErrorOut, "description": "At your quota, or the pool cannot keep phone data"}},
)
async def create_personal_phone(
    body: PersonalPhoneCreate, principal: CurrentPrincipal, phones: PersonalPhoneServiceDep
) -> PersonalPhoneOut:
    """A new phone, `asleep`: the first task or session on it (`personal_phone_id`) wakes it in
    factory state; whatever you do on it then (log in to apps, change settings) is kept."""
    return PersonalPhoneOut.of(await phones.create(principal, body), internal=principal.is_operator)


@router.get("", summary="List personal phones, newest first")
async def list_personal_phones(
    principal: CurrentPrincipal,
    phones: PersonalPhoneServiceDep,
    scope: Annotated[
        Literal["mine", "tenant"], Query(description="`mine`, or `tenant` (admins): every user's.")
    ] = "mine",
    limit: Annotated[int, Query(ge=1, le=100, description="Items per page (1–100).")] = 20,
    cursor: Annotated[
        str | None, Query(max_length=512, description="`next_cursor` of the previous page.")
    ] = None,
) -> PageOut[PersonalPhoneOut]:
    """Your personal phones; an admin may ask for the whole tenant's."""
    page = await phones.list(principal, scope=scope, limit=limit, cursor=cursor)
    return PageOut[PersonalPhoneOut](
        items=[PersonalPhoneOut.of(row, internal=principal.is_operator) for row in page.items], next_cursor=page.next_cursor
    )


@router.get("/{personal_phone_id}", summary="Read a personal phone")
async def get_personal_phone(
    personal_phone_id: uuid.UUID, principal: CurrentPrincipal, phones: PersonalPhoneServiceDep
) -> PersonalPhoneOut:
    """Its state and the time of its last use."""
    return PersonalPhoneOut.of(await phones.get(principal, personal_phone_id), internal=principal.is_operator)


@router.get(
    "/{personal_phone_id}/thumbnail",
    summary="A personal phone's thumbnail",
    response_class=Response,
    responses={
        200: {"content": {"image/jpeg": {}}, "description": "The latest screenshot of a task on it"},
        404: {"model": ErrorOut, "description": "No such phone, or no task on it recorded a screenshot yet"},
    },
)
async def personal_phone_thumbnail(
    personal_phone_id: uuid.UUID,
    principal: CurrentPrincipal,
    phones: PersonalPhoneServiceDep,
    steps: StepServiceDep,
) -> Response:
    """The screen as the latest task on it last recorded it (a step's screenshot, decrypted when
    stored encrypted): what the phone showed when it was last put down. Works asleep or awake; it
    wakes nothing. A session's own use records no steps, so it does not change the thumbnail."""
    row = await phones.get(principal, personal_phone_id)
    return image_response(await steps.phone_thumbnail(row.tenant_id, row.id))


@router.patch("/{personal_phone_id}", summary="Rename a personal phone, or change its allowed apps")
async def rename_personal_phone(
    personal_phone_id: uuid.UUID,
    body: PersonalPhoneRename,
    principal: CurrentPrincipal,
    phones: PersonalPhoneServiceDep,
) -> PersonalPhoneOut:
    """Only its owner renames it or changes its allowed_apps (absent: unchanged; null: any app)."""
    return PersonalPhoneOut.of(await phones.rename(principal, personal_phone_id, body), internal=principal.is_operator)


@router.delete(
    "/{personal_phone_id}",
    summary="Delete a personal phone and its data",
    responses={
        409: {"model": ErrorOut, "description": "A task or session holds it, or it is waking or sleeping"}
    },
)
async def delete_personal_phone(
    personal_phone_id: uuid.UUID,
    principal: CurrentPrincipal,
    phones: PersonalPhoneServiceDep,
    confirm: Annotated[
        str | None, Query(max_length=200, description="Its name, repeated: its data is removed for good.")
    ] = None,
) -> PersonalPhoneOut:
    """Irreversible: the pool stops its device and removes its data (apps, logins, files). Answers
    the phone as it was; it is gone from every read at once."""
    return PersonalPhoneOut.of(await phones.delete(principal, personal_phone_id, confirm), internal=principal.is_operator)


@router.get(
    "/{personal_phone_id}/export",
    summary="Export a personal phone's data, encrypted",
    response_class=Response,
    responses={
        200: {"content": {"application/octet-stream": {}}, "description": "The encrypted archive"},
        409: {
            "model": ErrorOut,
            "description": "It is in use, waking or sleeping; or not a virtual phone's data (redroid)",
        },
        413: {"model": ErrorOut, "description": "Its data exceeds personal_phones.max_archive_bytes"},
    },
)
async def export_personal_phone(
    personal_phone_id: uuid.UUID, principal: CurrentPrincipal, archives: PhoneArchivesDep
) -> Response:
    """Your phone's data (apps, logins, settings, files) as one file, encrypted with this
    deployment's `personal_phones.export_key`: only a deployment with the same key imports it.
    The phone must be `asleep` or `ready` (no task or session on it)."""
    row, archive = await archives.export(principal, personal_phone_id)
    return Response(
        archive,
        media_type="application/octet-stream",
        headers={"Content-Disposition": f'attachment; filename="personal-phone-{row.id}.pfphone"'},
    )


@router.post(
    "/import",
    status_code=201,
    summary="Make a personal phone from an export",
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        }
    },
    responses={
        409: {"model": ErrorOut, "description": "At your quota, or the pool is not the virtual phone's"},
        413: {"model": ErrorOut, "description": "The archive exceeds personal_phones.max_archive_bytes"},
        422: {
            "model": ErrorOut,
            "description": "Made with another deployment's key, altered, or with members outside its data",
        },
    },
)
async def import_personal_phone(
    request: Request,
    principal: CurrentPrincipal,
    archives: PhoneArchivesDep,
    name: Annotated[
        str | None,
        Query(min_length=1, max_length=200, description="Its name; default: the exported phone's."),
    ] = None,
) -> PersonalPhoneOut:
    """The body is an export's bytes (`GET …/{id}/export`), as sent (`application/octet-stream`).
    The new phone is `asleep`; its first task or session wakes it on the imported data."""
    return PersonalPhoneOut.of(await archives.import_(principal, await request.body(), name), internal=principal.is_operator)
