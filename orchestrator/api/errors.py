"""Errors → HTTP: the one status table and the one handler that walks an error's MRO to it.

Every error body is ``{"error": code, "message": text}`` (validation errors add ``details``).
A body that is not JSON answers 400 ``invalid_json`` (FastAPI's own answers, a 422 or a bare 400, are
mapped here); a 405 names in ``Allow`` every method of the path.
Retryable errors carry ``Retry-After``; 401 carries ``WWW-Authenticate: Bearer``. An error with no
entry is logged with its traceback and answers 500 — which user input must never cause.
"""

from __future__ import annotations

import logging
import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from device_pool.errors import CapacityError, DeviceError, PersonalPhoneWakeFailed, PhoneFleetError
from orchestrator.errors import (
    BadHttpRequest,
    BodyTimeout,
    Conflict,
    Gone,
    HeadersTooLarge,
    InvalidJson,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
    Unavailable,
)

__all__ = ["STATUS", "error_response", "install_error_handlers", "response_for", "status_for"]

logger = logging.getLogger(__name__)

# The only place an error class meets an HTTP status. (ModelError is the worker's: the API never
# raises it, and the API does not import worker code.)
STATUS: dict[type[PhoneFleetError], int] = {
    BadHttpRequest: 400,
    InvalidJson: 400,
    Unauthenticated: 401,
    PermissionDenied: 403,
    NotFound: 404,
    BodyTimeout: 408,
    Conflict: 409,
    Gone: 410,
    PayloadTooLarge: 413,
    InvalidRequest: 422,
    RateLimited: 429,
    HeadersTooLarge: 431,
    DeviceError: 502,
    PersonalPhoneWakeFailed: 502,  # the pool could not start a device on the phone's data
    CapacityError: 503,
    Unavailable: 503,
}

_DEFAULT_RETRY_AFTER_S = 1


def status_for(exc: PhoneFleetError) -> int | None:
    """The status of the nearest class in ``exc``'s MRO that the table maps; None if unmapped."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return None


def error_response(
    status: int, code: str, message: str, *, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    """The JSON error body every error answer uses."""
    headers = dict(headers or {})
    if status == 401:
        headers.setdefault("WWW-Authenticate", 'Bearer realm="phonefleet"')
    return JSONResponse({"error": code, "message": message, **extra}, status_code=status, headers=headers)


def response_for(exc: PhoneFleetError) -> JSONResponse:
    """The answer to a PhoneFleet error: its mapped status, code and message (500 if unmapped)."""
    status = status_for(exc)
    if status is None:
        logger.error("unmapped error answered with 500", exc_info=exc)
        return error_response(500, "internal_error", "internal error; it has been logged")
    headers: dict[str, str] = {}
    if exc.retryable:
        wait = exc.context.get("retry_after_s", _DEFAULT_RETRY_AFTER_S)
        headers["Retry-After"] = str(max(1, math.ceil(float(wait))))
    if status >= 500:
        logger.warning("%s answered %d: %s", exc.code, status, exc.message)
    return error_response(status, exc.code, exc.message, headers=headers)


async def _phonefleet_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, PhoneFleetError)
    return response_for(exc)


def _location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc) or "request"


async def _validation_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = exc.errors()
    # FastAPI reports a body that is not JSON as a validation error; it is the request's framing.
    broken = next((err for err in errors if err.get("type") == "json_invalid"), None)
    if broken is not None:
        reason = (broken.get("ctx") or {}).get("error", "JSON decode error")
        return response_for(InvalidJson(f"the body is not valid JSON: {reason} at character {broken['loc'][-1]}"))
    # Never echo the input back: it may be megabytes, or a secret pasted in the wrong field.
    details = [
        {"loc": list(err.get("loc", ())), "msg": err.get("msg", ""), "type": err.get("type", "")}
        for err in errors
    ]
    message = "; ".join(f"{_location(tuple(d['loc']))}: {d['msg']}" for d in details[:5])
    if len(details) > 5:
        message += f"; and {len(details) - 5} more"
    return error_response(422, "validation_error", message or "invalid request", details=details)


_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")


def _allowed_methods(request: Request) -> str:
    """Every method some route of this path answers (the 405 FastAPI raises names only the first
    route's). Each method is tried on a fresh scope: the request's carries the route it matched."""
    path, root_path = request.scope["path"], request.scope.get("root_path", "")

    def answered(method: str) -> bool:
        probe = {"type": "http", "path": path, "root_path": root_path, "method": method}
        return any(route.matches(dict(probe))[0] is Match.FULL for route in request.app.router.routes)

    return ", ".join(method for method in _METHODS if answered(method))


async def _http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    # FastAPI's own 400 wraps what its body parsing raised: a RecursionError for JSON nested too
    # deep, a ValueError (UnicodeDecodeError) for bytes that are no JSON encoding at all.
    if exc.status_code == 400 and isinstance(exc.__cause__, (RecursionError, ValueError)):
        reason = "nested too deep" if isinstance(exc.__cause__, RecursionError) else str(exc.__cause__)
        return response_for(InvalidJson(f"the body is not valid JSON: {reason}"))
    headers = dict(exc.headers or {})
    if exc.status_code == 405:
        headers["Allow"] = _allowed_methods(request)
    codes = {404: "not_found", 405: "method_not_allowed"}
    return error_response(
        exc.status_code,
        codes.get(exc.status_code, "http_error"),
        str(exc.detail),
        headers=headers,
    )


def install_error_handlers(app: FastAPI) -> None:
    """Register the handlers: PhoneFleet errors, request validation, and routing errors (404/405)."""
    app.add_exception_handler(PhoneFleetError, _phonefleet_error)
    app.add_exception_handler(RequestValidationError, _validation_error)
    app.add_exception_handler(StarletteHTTPException, _http_error)
