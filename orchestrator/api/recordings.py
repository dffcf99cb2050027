"""Recording routes: a task's or a session's video (MP4), with range requests (docs/recordings.md)."""

from __future__ import annotations

import re
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import FileResponse, Response

from orchestrator.api.deps import CurrentPrincipal, Services, get_settings
from orchestrator.api.schemas import ErrorOut
from orchestrator.services.recordings import Recording, RecordingService

__all__ = ["router"]

_HEADERS = {"Cache-Control": "private, no-store", "Accept-Ranges": "bytes"}
_RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"content": {"video/mp4": {}}, "description": "The whole recording (H.264 in fragmented MP4)"},
    206: {"content": {"video/mp4": {}}, "description": "The byte range asked for (`Range`)"},
    401: {"model": ErrorOut, "description": "Missing, invalid or revoked API key"},
    403: {"model": ErrorOut, "description": "Encrypted (redaction on): its tenant's admins and its owner only"},
    404: {"model": ErrorOut, "description": "No such one in your tenant, not ended yet, or no recording"},
    409: {"model": ErrorOut, "description": "Stored encrypted with another key (storage.encryption_key)"},
    416: {"description": "The range is outside the recording"},
    422: {"model": ErrorOut, "description": "Invalid input; `message` says which field and why"},
}

router = APIRouter(prefix="/api/v1", responses=_RESPONSES)


async def _recordings(request: Request) -> RecordingService:
    services: Services = request.app.state.services
    return RecordingService(services.db, await get_settings(request))


RecordingServiceDep = Annotated[RecordingService, Depends(_recordings)]


@router.get("/tasks/{task_id}/recording", summary="A task's recording (MP4)", tags=["tasks"],
            response_class=Response)  # fmt: skip
async def get_task_recording(
    task_id: uuid.UUID, request: Request, principal: CurrentPrincipal, recordings: RecordingServiceDep
) -> Response:
    """The phone's video of an ended task, as its phone encoded it; each step's `timings.video_ms`
    is where its screenshot is in it. Honours `Range` (206)."""
    return recording_response(await recordings.task_recording(principal, task_id), request)


@router.get("/sessions/{session_id}/recording", summary="A session's recording (MP4)", tags=["sessions"],
            response_class=Response)  # fmt: skip
async def get_session_recording(
    session_id: uuid.UUID, request: Request, principal: CurrentPrincipal, recordings: RecordingServiceDep
) -> Response:
    """The phone's video of an ended session. Honours `Range` (206)."""
    return recording_response(await recordings.session_recording(principal, session_id), request)


def recording_response(recording: Recording, request: Request) -> Response:
    """A plain recording is served from its file (Starlette answers `Range` itself); a sealed one's
    plain bytes from memory, with the same single-range answers."""
    if recording.data is None:
        return FileResponse(recording.path, media_type="video/mp4", headers=_HEADERS,
                            content_disposition_type="inline", filename=recording.filename)  # fmt: skip
    return bytes_range_response(recording.data, request.headers.get("range"))


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def bytes_range_response(data: bytes, range_header: str | None) -> Response:
    """``data`` whole (200), or the one range asked for (206); several ranges or an unreadable
    header get the whole (a server may ignore `Range`), one outside ``data`` a 416."""
    size = len(data)
    found = _RANGE.match(range_header.strip()) if range_header else None
    if found is None or not (found[1] or found[2]):
        return Response(data, media_type="video/mp4", headers=_HEADERS)
    if found[1]:
        start = int(found[1])
        end = min(int(found[2]), size - 1) if found[2] else size - 1
    else:  # the last N bytes
        start, end = max(0, size - int(found[2])), size - 1
    if start >= size or start > end:
        return Response(status_code=416, headers={**_HEADERS, "Content-Range": f"bytes */{size}"})
    return Response(
        data[start : end + 1], status_code=206, media_type="video/mp4",
        headers={**_HEADERS, "Content-Range": f"bytes {start}-{end}/{size}"},
    )  # fmt: skip
