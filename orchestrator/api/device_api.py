"""Device API routes: the phone a session holds — screenshot, UI tree, input, launch, files, APK
installs, logcat (``services/device_api.py``)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from typing import Annotated, Any, Literal
from urllib.parse import quote

from fastapi import APIRouter, Body, Depends, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from orchestrator.api.deps import CurrentPrincipal
from orchestrator.api.schemas import ErrorOut
from orchestrator.errors import PhoneFleetError
from orchestrator.services.device_api import DeviceApi
from orchestrator.services.device_input import DeviceInput, LaunchSpec
from orchestrator.services.device_logcat import MAX_TAIL, LogcatQuery

__all__ = ["router"]

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Missing, invalid or revoked API key"},
    404: {"model": ErrorOut, "description": "No such session in your tenant"},
    409: {"model": ErrorOut, "description": "The session ended: it holds no phone (`no_live_device`)"},
    422: {"model": ErrorOut, "description": "Invalid input; `message` says which field and why"},
    502: {"model": ErrorOut, "description": "The phone did not answer or refused the command"},
}

router = APIRouter(prefix="/api/v1/sessions/{session_id}", tags=["device API"], responses=_ERRORS)


async def _device_api(request: Request) -> DeviceApi:
    return request.app.state.device_api


DeviceApiDep = Annotated[DeviceApi, Depends(_device_api)]

_INPUT_EXAMPLES = {
    "tap a point": {"value": {"type": "tap", "x": 540, "y": 1200}},
    "tap an element": {"value": {"type": "tap", "element_id": "e3f9a1c"}},
    "swipe up": {"value": {"type": "swipe", "direction": "up"}},
    "swipe": {"value": {"type": "swipe", "x1": 360, "y1": 1200, "x2": 360, "y2": 400, "duration_ms": 300}},
    "type": {"value": {"type": "text", "text": "hello", "clear": False}},
    "key": {"value": {"type": "key", "key": "back"}},
}


@router.get(
    "/screenshot",
    summary="The session phone's screen now (PNG or JPEG)",
    response_class=Response,
    responses={200: {"content": {"image/png": {}, "image/jpeg": {}},
                     "description": "The image; `X-Screen-Width`/`X-Screen-Height` give the phone's pixels"}},
)  # fmt: skip
async def screenshot(
    session_id: uuid.UUID,
    principal: CurrentPrincipal,
    api: DeviceApiDep,
    format: Annotated[Literal["png", "jpeg"], Query(description="`png` (default) or `jpeg`.")] = "png",
    scale: Annotated[float, Query(gt=0, le=1, description="Image size as a fraction of the screen's (0–1].")] = 1.0,
    quality: Annotated[int, Query(ge=1, le=100, description="JPEG quality (1–100).")] = 80,
    max_side: Annotated[
        int | None, Query(ge=16, le=8192, description="Scale down further, if need be, to fit this many pixels "
                          "on the longer side (what a vision model takes in).")
    ] = None,
) -> Response:
    """Taken when asked. Points for `…/input` are the phone's pixels: divide the image's by the
    scale (its width over `X-Screen-Width`)."""
    shot = await api.screenshot(
        principal, session_id, format=format, scale=scale, quality=quality, max_side=max_side
    )
    headers = {
        "X-Screen-Width": str(shot.screen[0]), "X-Screen-Height": str(shot.screen[1]),
        "Cache-Control": "no-store",
    }  # fmt: skip
    return Response(shot.data, media_type=shot.media_type, headers=headers)


@router.get(
    "/ui",
    summary="The session phone's UI tree now (compact JSON with element ids, or uiautomator XML)",
    responses={200: {"content": {"application/json": {}, "application/xml": {}}}},
)
async def ui_tree(
    session_id: uuid.UUID,
    principal: CurrentPrincipal,
    api: DeviceApiDep,
    format: Annotated[Literal["json", "xml"], Query(description="`json` (default) or `xml`.")] = "json",
) -> Any:
    """JSON: `{"screen": {"width", "height"}, "package", "elements": [{"id", "kind", "text",
    "description", "resource_id", "bounds": [left, top, right, bottom], "clickable", …}]}` — the
    elements with text or that can be acted on; empty text and false flags are left out. An element
    id stays the same while the element is on the screen (also when its text changes)."""
    tree = await api.ui_tree(principal, session_id)
    if format == "xml":
        return Response(tree.xml, media_type="application/xml")
    return tree.as_json()


@router.post("/input", summary="Tap, swipe, type or press a key on the session's phone")
async def send_input(
    session_id: uuid.UUID,
    principal: CurrentPrincipal,
    api: DeviceApiDep,
    body: Annotated[DeviceInput, Body(examples=[{"type": "key", "key": "back"}], openapi_examples=_INPUT_EXAMPLES)],
) -> dict[str, Any]:
    """Answers what was done: the point tapped (and the element), the swipe's path. Only the
    session's user may send input (403 otherwise). An `element_id` no longer on the screen answers
    404 `element_not_found`; a point off the screen, 422 `input_rejected`."""
    return await api.input(principal, session_id, body)


@router.post("/launch", summary="Start an app on the session's phone")
async def launch(
    session_id: uuid.UUID, principal: CurrentPrincipal, api: DeviceApiDep, body: LaunchSpec
) -> dict[str, Any]:
    """By name (Settings, Notes, 设置 …), package or `package/activity`; answers the package.
    An app the phone lacks answers 422 `input_rejected`."""
    return await api.launch(principal, session_id, body.app)


_FILE_PATH = Query(
    min_length=1, max_length=1024, examples=["/sdcard/Download/report.pdf"],
    description="The file's absolute path on the phone, inside an allowed folder (`/sdcard/` unless the "
    "operator set `device_api.file_roots`), e.g. `/sdcard/Download/report.pdf`.",
)  # fmt: skip


@router.put(
    "/files",
    summary="Push a file to the session's phone (the body is the file's bytes)",
    openapi_extra={"requestBody": {"required": True, "content": {"application/octet-stream": {
        "schema": {"type": "string", "format": "binary"}}}}},
    responses={413: {"model": ErrorOut, "description": "The file is over `device_api.file_max_bytes`"}},
)  # fmt: skip
async def push_file(
    session_id: uuid.UUID,
    request: Request,
    principal: CurrentPrincipal,
    api: DeviceApiDep,
    path: Annotated[str, _FILE_PATH],
) -> dict[str, Any]:
    """Writes the body, as it is, to `path` (replacing a file there; missing folders are made).
    Answers `{"type": "push_file", "path", "bytes"}`. A path outside the allowed folders, relative,
    with `.`/`..` parts or control characters, through a symbolic link, or naming a folder: 422
    `path_not_allowed`. Only the session's user may push (403 otherwise)."""
    return await api.push_file(principal, session_id, path, await request.body())


@router.get(
    "/files",
    summary="Pull a file from the session's phone",
    response_class=StreamingResponse,
    responses={200: {"content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
                     "description": "The file's bytes, streamed from the phone; `Content-Length` is its size"}},
)  # fmt: skip
async def pull_file(
    session_id: uuid.UUID, principal: CurrentPrincipal, api: DeviceApiDep, path: Annotated[str, _FILE_PATH]
) -> Response:
    """The file's bytes (`application/octet-stream`), passed on as the phone sends them (the API
    never holds the whole file), with its size as `Content-Length`. No file there: 404
    `file_not_found`; a path not allowed: 422 `path_not_allowed` (as for a push). Only the session's
    user may pull. A file that changes size while it is read ends the answer short (the connection
    closes before `Content-Length` bytes)."""
    pull = await api.pull_file(principal, session_id, path)
    name = pull.path.rsplit("/", 1)[-1]
    headers = {
        "Content-Disposition": f"attachment; filename*=UTF-8''{quote(name)}",
        "Content-Length": str(pull.size), "Cache-Control": "no-store",
    }  # fmt: skip
    return StreamingResponse(pull.chunks, media_type="application/octet-stream", headers=headers)


@router.post(
    "/apps",
    summary="Install an APK on the session's phone (the body is the APK's bytes)",
    openapi_extra={"requestBody": {"required": True, "content": {"application/vnd.android.package-archive": {
        "schema": {"type": "string", "format": "binary"}}, "application/octet-stream": {
        "schema": {"type": "string", "format": "binary"}}}}},
    responses={413: {"model": ErrorOut, "description": "The APK is over `device_api.apk_max_bytes`"}},
)  # fmt: skip
async def install_apk(
    session_id: uuid.UUID, request: Request, principal: CurrentPrincipal, api: DeviceApiDep
) -> dict[str, Any]:
    """Installs the APK (a newer version replaces the installed one, its data kept, as `adb install
    -r`). Answers `{"type": "install_apk", "package", "bytes"}`. Bytes that are not an APK, or an
    APK the phone refuses (an incompatible update, too new for the phone …): 422 `apk_rejected` with
    the package manager's reason. Only the session's user may install (403 otherwise)."""
    return await api.install_apk(principal, session_id, await request.body())


@router.get(
    "/logcat",
    summary="The session phone's log (logcat), as server-sent events",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}, "application/json": {}},
                     "description": "An event per line; with `dump=true`, JSON `{\"lines\": [...]}`"}},
)  # fmt: skip
async def logcat(
    session_id: uuid.UUID,
    principal: CurrentPrincipal,
    api: DeviceApiDep,
    filter: Annotated[list[str] | None, Query(
        description="logcat filter specs, `TAG:P` or `*:P` (P one of V D I W E F S); repeat for more. "
        "With only `TAG:P` specs, other tags are left out.", examples=["ActivityTaskManager:I"])] = None,
    grep: Annotated[str | None, Query(max_length=200, description="A regular expression the message must match.")] = None,
    dump: Annotated[bool, Query(description="What the phone holds now, as JSON, then the end.")] = False,
    tail: Annotated[int | None, Query(ge=0, le=MAX_TAIL, description="Only the last N lines already "
                                      "logged (0: only new ones); unset: all the phone holds.")] = None,
) -> Response:
    """Each line is an event whose `data` is JSON: `{"time", "pid", "tid", "priority", "tag",
    "message", "line"}` (`line` alone for a line of another shape). The stream follows the log until
    you close it or the session stops holding its phone; then a last `event: end` says why. Anyone
    of the session's tenant may read it; opening it is recorded on the session's timeline."""
    query = LogcatQuery(tuple(filter or ()), grep, dump, tail)
    lines = await api.open_logcat(principal, session_id, query)
    if dump:
        return JSONResponse({"lines": [line async for line in lines]}, headers={"Cache-Control": "no-store"})
    return StreamingResponse(
        _events(lines), media_type="text/event-stream",
        headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"},
    )  # fmt: skip


async def _events(lines: AsyncIterator[dict[str, Any]]) -> AsyncIterator[bytes]:
    reason = "the log ended"
    try:
        async for line in lines:
            yield b"data: " + json.dumps(line, ensure_ascii=False).encode() + b"\n\n"
    except PhoneFleetError as exc:  # the session ended, or its phone went away, mid-stream
        reason = str(exc)
    yield b"event: end\ndata: " + json.dumps({"reason": reason}).encode() + b"\n\n"
