"""Session routes: hold a phone without a task (for a person or your own agent), keep it alive, close it."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Query

from orchestrator.api.deps import CurrentPrincipal, SessionServiceDep
from orchestrator.api.schemas import ErrorOut, PageOut
from orchestrator.api.schemas.sessions import SessionCreate, SessionOut
from orchestrator.db import SessionState

__all__ = ["router"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing, invalid or revoked API key"},
    404: {"model": ErrorOut, "description": "No such session in your tenant"},
    422: {"model": ErrorOut, "description": "Invalid input; `message` says which field and why"},
}

router = APIRouter(prefix="/api/v1/sessions", tags=["sessions"], responses=_ERRORS)


@router.post(
    "",
    status_code=201,
    summary="Start a session: lease a phone",
    responses={503: {"model": ErrorOut, "description": "No phone came free within wait_s; see Retry-After"}},
)
async def create_session(
    body: SessionCreate, principal: CurrentPrincipal, sessions: SessionServiceDep
) -> SessionOut:
    """Waits up to `wait_s` for an idle phone matching `device_profile`; the session lives `ttl_s` s
    unless kept alive. The answer says how to reach the phone with adb: through the API's tunnel
    (`phonefleet adb SESSION_ID`), never at the phone's own address."""
    return SessionOut.from_view(await sessions.create(principal, body), internal=principal.is_operator)


@router.get("", summary="List sessions, newest first")
async def list_sessions(
    principal: CurrentPrincipal,
    sessions: SessionServiceDep,
    state: Annotated[SessionState | None, Query(description="Only sessions in this state.")] = None,
    limit: Annotated[int, Query(ge=1, le=100, description="Items per page (1–100).")] = 20,
    cursor: Annotated[
        str | None, Query(max_length=512, description="`next_cursor` of the previous page.")
    ] = None,
) -> PageOut[SessionOut]:
    """Your tenant's sessions, paged by an opaque cursor."""
    page = await sessions.list(principal, state=state, limit=limit, cursor=cursor)
    return PageOut[SessionOut](
        items=[SessionOut.from_view(v, internal=principal.is_operator) for v in page.items], next_cursor=page.next_cursor
    )


@router.get("/{session_id}", summary="Read a session")
async def get_session(
    session_id: uuid.UUID, principal: CurrentPrincipal, sessions: SessionServiceDep
) -> SessionOut:
    """One session of your tenant (one past its expiry reads `expired`)."""
    return SessionOut.from_view(await sessions.get(principal, session_id), internal=principal.is_operator)


@router.post(
    "/{session_id}/keepalive",
    summary="Keep a session alive",
    responses={409: {"model": ErrorOut, "description": "The session is closed or expired"}},
)
async def keepalive_session(
    session_id: uuid.UUID, principal: CurrentPrincipal, sessions: SessionServiceDep
) -> SessionOut:
    """`expires_at` becomes now + `ttl_s`, and the phone's lease is extended with it."""
    return SessionOut.from_view(await sessions.keepalive(principal, session_id), internal=principal.is_operator)


@router.delete("/{session_id}", summary="Close a session")
async def close_session(
    session_id: uuid.UUID, principal: CurrentPrincipal, sessions: SessionServiceDep
) -> SessionOut:
    """Releases the phone (the pool resets it before anyone else gets it) and answers the session,
    `closed`. A session that already ended is answered as it is (`closed` or `expired`)."""
    return SessionOut.from_view(await sessions.close(principal, session_id), internal=principal.is_operator)
