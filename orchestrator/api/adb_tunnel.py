"""``WS /api/v1/sessions/{id}/adb``: the ADB tunnel to a session's phone (``services/adb_tunnel.py``).

Authenticated like every socket (``Authorization: Bearer`` on the handshake, or the dashboard's
login cookie from its own origin). Binary messages carry the adb byte stream both ways, unchanged.
It closes with 1000 when either side hangs up, and otherwise with 4000 + the HTTP status of why:
4401 (no, bad or revoked key), 4404 (no such session of yours), 4409 (the session ended or holds no
phone; a USB phone, which has no tunnel), 4502 (the phone did not accept the connection).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from fastapi import APIRouter, WebSocket, WebSocketDisconnect
from starlette.websockets import WebSocketState

from orchestrator.api.deps import Services, websocket_principal
from orchestrator.api.errors import status_for
from orchestrator.errors import PhoneFleetError, Unauthenticated
from orchestrator.services.adb_tunnel import AdbTunnels, TunnelEnd

__all__ = ["router"]

logger = logging.getLogger(__name__)

router = APIRouter()
_CHUNK = 64 * 1024


@router.websocket("/api/v1/sessions/{session_id}/adb")
async def adb_tunnel(websocket: WebSocket, session_id: uuid.UUID) -> None:
    await websocket.accept()
    services: Services = websocket.app.state.services
    tunnels = AdbTunnels(services.sessions, services.verifier)
    try:
        principal = await websocket_principal(websocket)
        if principal is None:
            raise Unauthenticated("missing API key: send 'Authorization: Bearer pf_<prefix>_<secret>'")
        view, reader, writer = await tunnels.open(principal, session_id)
    except PhoneFleetError as exc:
        status = status_for(exc) or 500
        await _close(websocket, TunnelEnd(4000 + status, exc.message))
        return
    logger.info("adb tunnel opened", extra={"session_id": str(session_id), "key_id": str(principal.key_id)})
    end = TunnelEnd(1000, "closed")
    pumps = {
        asyncio.create_task(_to_phone(websocket, writer)),
        asyncio.create_task(_from_phone(websocket, reader)),
    }
    watcher = asyncio.create_task(tunnels.watch(principal, view))
    try:
        done, _ = await asyncio.wait({*pumps, watcher}, return_when=asyncio.FIRST_COMPLETED)
        if watcher in done and watcher.exception() is None:
            end = watcher.result()
        elif watcher in done and isinstance(watcher.exception(), PhoneFleetError):
            exc = watcher.exception()
            end = TunnelEnd(4000 + (status_for(exc) or 500), str(exc))
    finally:
        for task in (*pumps, watcher):
            task.cancel()
        for task in (*pumps, watcher):
            with contextlib.suppress(BaseException):
                await task
        writer.close()
        with contextlib.suppress(OSError):
            await writer.wait_closed()
        await _close(websocket, end)
    logger.info("adb tunnel closed", extra={"session_id": str(session_id), "code": end.code, "reason": end.reason})


async def _to_phone(websocket: WebSocket, writer: asyncio.StreamWriter) -> None:
    """The caller's bytes to the phone, until the caller hangs up."""
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("bytes")
        if data is None and message.get("text") is not None:
            data = message["text"].encode()
        if data:
            writer.write(data)
            await writer.drain()


async def _from_phone(websocket: WebSocket, reader: asyncio.StreamReader) -> None:
    """The phone's bytes to the caller, until the phone hangs up."""
    while data := await reader.read(_CHUNK):
        await websocket.send_bytes(data)


async def _close(websocket: WebSocket, end: TunnelEnd) -> None:
    if websocket.application_state != WebSocketState.DISCONNECTED:
        with contextlib.suppress(RuntimeError, OSError, WebSocketDisconnect):
            await websocket.close(end.code, end.reason.encode()[:123].decode(errors="ignore"))
