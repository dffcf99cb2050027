"""``WS /api/v1/events``: the caller's tenant's events, live, optionally for one task and resumed after an id.

The socket is accepted first and then authenticated, so a refusal carries a close code and a reason a
browser can read: ``Authorization: Bearer`` on the handshake (``deps.websocket_principal``, the hook
the dashboard's cookie extends), or else a first message ``{"type": "auth", "api_key": "pf_…"}``
within ``AUTH_TIMEOUT_S`` (browsers cannot set headers on a WebSocket; a key in the URL would end up
in access logs, so ``?api_key=`` is not accepted).

Close codes: a PhoneFleet error closes with 4000 + its HTTP status from the one table
(``errors.status_for``): 4401 unauthenticated, 4404 task not found, 4422 invalid query, 4503 database
unavailable. 1013 a consumer too slow for its buffer (reconnect with ``after``). On shutdown uvicorn
closes open sockets with 1012 before the lifespan ends; any still open then get 1001 from the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import uuid
from typing import Any

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from device_pool.errors import PhoneFleetError
from orchestrator.api.deps import Services, websocket_principal
from orchestrator.api.errors import status_for
from orchestrator.db import utcnow
from orchestrator.errors import InvalidRequest, Unauthenticated
from orchestrator.services.auth import Principal
from orchestrator.services.events import HubClosed, SlowConsumer, StreamEnded, Subscription

__all__ = ["AUTH_TIMEOUT_S", "KEEPALIVE_S", "router"]

logger = logging.getLogger(__name__)

AUTH_TIMEOUT_S = 5.0
KEEPALIVE_S = 20.0  # a {"type": "keepalive"} message after this long without one (browsers see no pings)
SEND_TIMEOUT_S = 10.0  # a client that stops reading is closed instead of holding a send forever
_MAX_AUTH_MESSAGE = 1024

router = APIRouter(tags=["events"])


@router.websocket("/api/v1/events")
async def events_socket(websocket: WebSocket) -> None:
    """Stream ``{id, type, task_id, created_at, payload}`` messages; see docs/api.md "Events"."""
    await websocket.accept()
    services: Services = websocket.app.state.services
    try:
        task_id, after = _query(websocket)
        principal = await websocket_principal(websocket) or await _first_message_auth(websocket, services)
        if task_id is not None:
            await services.tasks.get(principal, task_id)  # TaskNotFound for another tenant's task
        sub = await services.events.subscribe(principal.tenant_id, task_id=task_id, after=after)
    except WebSocketDisconnect:
        return
    except (PhoneFleetError, StreamEnded) as exc:
        await _close_for(websocket, exc)
        return
    try:
        await _serve(websocket, sub)
    finally:
        sub.close()


def _query(websocket: WebSocket) -> tuple[uuid.UUID | None, int | None]:
    params = websocket.query_params
    unknown = sorted(set(params) - {"task_id", "after"})
    if unknown:
        raise InvalidRequest(f"unknown query parameter(s): {', '.join(unknown)} (use task_id, after)")
    task_id = after = None
    if (raw := params.get("task_id")) is not None:
        try:
            task_id = uuid.UUID(raw)
        except ValueError:
            raise InvalidRequest("task_id must be a task's id (a UUID)") from None
    if (raw := params.get("after")) is not None:
        if not (raw.isascii() and raw.isdigit()) or len(raw) > 18:
            raise InvalidRequest("after must be an event id (a non-negative integer)")
        after = int(raw)
    return task_id, after


async def _first_message_auth(websocket: WebSocket, services: Services) -> Principal:
    try:
        raw = await asyncio.wait_for(websocket.receive_text(), AUTH_TIMEOUT_S)
    except TimeoutError:
        raise Unauthenticated(
            f'no credentials: send \'Authorization: Bearer …\' or {{"type": "auth", "api_key": …}} '
            f"within {AUTH_TIMEOUT_S:g} s"
        ) from None
    except KeyError:  # a binary frame: Starlette's receive_text finds no "text"
        raise Unauthenticated('the first message must be JSON text {"type": "auth", "api_key": …}') from None
    try:
        message = json.loads(raw) if len(raw) <= _MAX_AUTH_MESSAGE else None
    except ValueError:
        message = None
    if (
        not isinstance(message, dict)
        or message.get("type") != "auth"
        or not isinstance(message.get("api_key"), str)
    ):
        raise Unauthenticated('the first message must be {"type": "auth", "api_key": "pf_<prefix>_<secret>"}')
    return await services.verifier.verify(f"Bearer {message['api_key']}")


async def _serve(websocket: WebSocket, sub: Subscription) -> None:
    """Send until the client leaves, the hub ends the subscription, or a send stalls."""
    sender = asyncio.create_task(_send_events(websocket, sub))
    reader = asyncio.create_task(_drain(websocket))
    try:
        done, _ = await asyncio.wait((sender, reader), return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in (sender, reader):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task
    if sender in done and not sender.cancelled() and (exc := sender.exception()) is not None:
        await _close_for(websocket, exc)


async def _send_events(websocket: WebSocket, sub: Subscription) -> None:
    await _send(websocket, _control("subscribed", sub.task_id, {"after": sub.position}))
    async for message in sub.replay():
        await _send(websocket, message.to_json())
    while True:
        message = await sub.next(KEEPALIVE_S)
        await _send(websocket, _control("keepalive", None, {}) if message is None else message.to_json())


async def _drain(websocket: WebSocket) -> None:
    """Read (and ignore) what the client sends, to notice when it goes away."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return


async def _send(websocket: WebSocket, body: dict[str, Any]) -> None:
    try:
        await asyncio.wait_for(websocket.send_text(json.dumps(body, separators=(",", ":"))), SEND_TIMEOUT_S)
    except TimeoutError:
        raise SlowConsumer(f"too slow: a send waited more than {SEND_TIMEOUT_S:g} s") from None


def _control(type_: str, task_id: uuid.UUID | None, payload: dict[str, Any]) -> dict[str, Any]:
    """A message that is not an event (``id`` null): ``subscribed`` first, ``keepalive`` when idle."""
    created = utcnow().isoformat().replace("+00:00", "Z")
    return {"id": None, "type": type_, "task_id": None if task_id is None else str(task_id),
            "created_at": created, "payload": payload}  # fmt: skip


async def _close_for(websocket: WebSocket, exc: BaseException) -> None:
    if isinstance(exc, PhoneFleetError):
        status = status_for(exc)
        code, reason = (4000 + status, exc.message) if status is not None else (1011, "internal error")
        if status is None:
            logger.error("unmapped error closed an events socket", exc_info=exc)
    elif isinstance(exc, SlowConsumer):
        code, reason = 1013, f"{exc}; reconnect with after=<the last id you received>"
    elif isinstance(exc, HubClosed):
        code, reason = 1001, str(exc)
    elif isinstance(exc, (WebSocketDisconnect, OSError, RuntimeError)):
        return  # the client is gone
    else:
        logger.error("events socket failed", exc_info=exc)
        code, reason = 1011, "internal error"
    if websocket.application_state != WebSocketState.DISCONNECTED:
        with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
            # A close reason is at most 123 bytes.
            await websocket.close(code, reason.encode()[:123].decode(errors="ignore"))
