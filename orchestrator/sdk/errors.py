"""The SDK's exceptions: one class per error code of the API, in the server's own tree.

    PhoneFleetAPIError (status, code, message, details, retry_after_s)
    ├─ NotFound → TaskNotFound, SessionNotFound, FileNotFound …
    ├─ Conflict → InvalidTransition, IdempotencyConflict, NoLiveDevice …
    ├─ InvalidRequest → PathNotAllowed, ApkRejected, ValidationError …
    ├─ BadHttpRequest → PayloadTooLarge, InvalidJson …
    ├─ RateLimited, Unavailable, CapacityError → NoDeviceAvailable …
    └─ …

The classes are generated from ``orchestrator/errors.py`` and ``device_pool/errors.py``
(``python -m orchestrator.sdk.generate``); ``ERRORS`` maps each code to its class. An answer whose
code this SDK does not know (a newer server) raises the class of its HTTP status's family
(404 → ``NotFound`` …), else ``PhoneFleetAPIError``.
"""

from __future__ import annotations

from typing import Any

import httpx

from orchestrator.sdk._base import PhoneFleetAPIError, TaskWaitTimeout, retry_after
from orchestrator.sdk._error_tree import *  # noqa: F403 -- the generated classes are this module's API
from orchestrator.sdk._error_tree import (
    ERRORS,
    BadHttpRequest,
    Conflict,
    InvalidRequest,
    NotFound,
    PayloadTooLarge,
    PermissionDenied,
    RateLimited,
    Unauthenticated,
    Unavailable,
)

# An unknown code's class, by HTTP status (the server's status table read backwards).
_BY_STATUS: dict[int, type[PhoneFleetAPIError]] = {
    400: BadHttpRequest, 401: Unauthenticated, 403: PermissionDenied, 404: NotFound, 409: Conflict,
    413: PayloadTooLarge, 422: InvalidRequest, 429: RateLimited, 503: Unavailable,
}  # fmt: skip


def error_class(status: int, code: str) -> type[PhoneFleetAPIError]:
    return ERRORS.get(code) or _BY_STATUS.get(status) or PhoneFleetAPIError


def error_from_response(response: httpx.Response) -> PhoneFleetAPIError:
    """The exception for a non-2xx answer: its body's ``error`` code and ``message``."""
    code, message, details = f"http_{response.status_code}", response.reason_phrase, None
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("error"), str):
        code = body["error"]
        message = str(body.get("message") or message)
        details = body.get("details") if isinstance(body.get("details"), list) else None
    elif response.text:
        message = response.text[:200]
    cls = error_class(response.status_code, code)
    return cls(response.status_code, code, message, details=details, retry_after_s=retry_after(response))


def error_from_close(code: int, reason: str, **_: Any) -> PhoneFleetAPIError | None:
    """The exception for an events socket the server closed with 4000 + an HTTP status; None for
    other close codes."""
    if not 4000 <= code < 5000:
        return None
    status = code - 4000
    cls = _BY_STATUS.get(status, PhoneFleetAPIError)
    return cls(status, cls.code, reason or "refused")


__all__ = [  # the generated classes, then this module's own names
    *(cls.__name__ for cls in ERRORS.values()),
    "ERRORS", "PhoneFleetAPIError", "TaskWaitTimeout", "error_class", "error_from_close", "error_from_response",
]  # fmt: skip
