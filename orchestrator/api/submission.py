"""``POST /api/v1/tasks`` answered in front of FastAPI's routing: the submission hot path.

Submission is the one route integrators call hundreds of times a second, and most of its CPU was
the framework, not the work: middleware layers, routing, dependency solving, body validation and
response re-validation took about 40% of an API process's time per request (py-spy at 300/s;
docs/control-plane.md, Benchmarks). ``TaskSubmission`` serves the ordinary request itself, a Bearer
key with a JSON body, by calling the same pieces the route calls: the key verifier,
``TaskCreate`` validation (``json.loads`` then the model, as FastAPI does), ``TaskService.create``,
``TaskOut`` serialised by alias, and ``api.errors`` for the service's errors. It stays in front of
the route, not instead of it: the route in ``api/tasks.py`` is the contract (OpenAPI, docs, tests).

Everything else goes to FastAPI untouched, and so does any request this path would refuse before
anything happened: no Authorization header (the dashboard's cookie, with its CSRF check), a body
that is not JSON or fails validation, a malformed ``Idempotency-Key``. The body read here is
replayed to the app, which then answers exactly as it always did (same 400/422 bodies). Only the
success path and the errors of the key and the service (through the one table in
``api/errors.py``) are answered here. ``api.submit_fast_path=false`` leaves this middleware out.
``HttpEdges`` (``api/edges.py``) sits in front of it: headers over their limit, a body over
``MAX_BODY_BYTES`` or one that stops arriving never reach it, so it reads a whole body at once.

What it must mirror of the route (``create_task`` in ``api/tasks.py``), answer for answer:

- **Authentication**: ``Authorization: Bearer`` through the same ``ApiKeyVerifier.verify`` as
  ``deps.authenticate``; the first copy of a repeated header, as Starlette reads it. Requests
  without the header (the login cookie, or none) are the route's.
- **Parsing**: ``Content-Type`` ``application/json`` (parameters ignored) and a ``Content-Length``,
  else the route; ``json.loads`` as FastAPI parses a JSON body.
- **Validation order**, as FastAPI resolves the route: the body parsed (not JSON: the route's
  400 ``invalid_json``), then the caller authenticated (a bad key wins over an invalid body: 401
  before 422), then ``TaskCreate`` validated. A request the route would refuse for its headers (an
  ``Idempotency-Key`` outside the route's ``IdempotencyKey`` rules, mirrored by ``_KEY``) or its
  body is handed to the route whole, so the route answers it in its own order.
- **Idempotency replay**: ``TaskService.create`` decides; a replay answers 200 with
  ``Idempotent-Replayed: true``, a first submission 202, both with ``TaskOut`` by alias.
- **Errors**: the key's and the service's ``PhoneFleetError`` through ``api.errors.response_for``,
  the table the route's exception handlers use (401, 409, 429 with Retry-After, 503); everything
  else is replayed to the route.

tests/orchestrator/api/test_submission.py runs two APIs on one database, one with this path and
one without, and compares their answers (successes, replays, bad input, bad credentials, revoked
keys, content types, chunked bodies, rate limiting, repeated headers, error order).
"""

from __future__ import annotations

import json
import re
from typing import Any

from pydantic import ValidationError

from orchestrator.api.asgi import route_path
from orchestrator.api.errors import response_for
from orchestrator.api.schemas import TaskCreate, TaskOut
from orchestrator.errors import PhoneFleetError

__all__ = ["SUBMIT_PATH", "TaskSubmission"]

SUBMIT_PATH = "/api/v1/tasks"
# The route's Idempotency-Key rules (api/tasks.py IdempotencyKey): 1-255 printable ASCII, no spaces.
_KEY = re.compile(rb"[\x21-\x7e]{1,255}")
_JSON_TYPES = (b"application/json",)
_SERIALIZE = TaskOut.__pydantic_serializer__


class TaskSubmission:
    """ASGI middleware: serves an ordinary task submission, passes every other request to ``app``."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["method"] != "POST" or route_path(scope) != SUBMIT_PATH:
            await self.app(scope, receive, send)
            return
        authorization = length = content_type = key = None
        for name, value in scope["headers"]:  # the first of a repeated header (even empty), as Starlette reads it
            if name == b"authorization" and authorization is None:
                authorization = value
            elif name == b"content-length" and length is None:
                length = value
            elif name == b"content-type" and content_type is None:
                content_type = value
            elif name == b"idempotency-key" and key is None:
                key = value
        if (
            authorization is None
            or length is None
            or not length.isdigit()
            or content_type is None
            or content_type.split(b";", 1)[0].strip().lower() not in _JSON_TYPES
            or (key is not None and not _KEY.fullmatch(key))
        ):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)
        if body is None:  # the client went away: there is nobody to answer
            return
        services = scope["app"].state.services
        # In the route's order: the body is parsed, then the caller authenticated, then the body
        # validated. Nothing has happened before the service call, so what fails here is answered
        # by the route itself (its own 422 bodies), except the key's errors, answered here by the
        # same table: the route would only look the key up a second time.
        try:
            payload = json.loads(body)
        except (ValueError, RecursionError):
            await self.app(scope, _replaying(body, receive), send)
            return
        try:
            principal = await services.verifier.verify(authorization.decode("latin-1"))
        except PhoneFleetError as exc:
            await response_for(exc)(scope, receive, send)
            return
        try:
            spec = TaskCreate.model_validate(payload)
        except (ValidationError, ValueError, RecursionError):
            await self.app(scope, _replaying(body, receive), send)
            return
        try:
            task, created = await services.tasks.create(principal, spec, key.decode() if key else None)
        except PhoneFleetError as exc:
            await response_for(exc)(scope, receive, send)
            return
        content = _SERIALIZE.to_json(TaskOut.from_row(task), by_alias=True)
        headers = [(b"content-length", str(len(content)).encode()), (b"content-type", b"application/json")]
        if not created:
            headers.append((b"idempotent-replayed", b"true"))
        await send({"type": "http.response.start", "status": 202 if created else 200, "headers": headers})
        await send({"type": "http.response.body", "body": content})


async def _read_body(receive: Any) -> bytes | None:
    """The request body (within its limit and deadline: ``HttpEdges`` read it); None when the
    client disconnects first."""
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] != "http.request":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)


def _replaying(body: bytes, receive: Any) -> Any:
    """A ``receive`` that hands the app the body already read, then the client's later messages."""
    pending = [{"type": "http.request", "body": body, "more_body": False}]

    async def replay() -> dict[str, Any]:
        return pending.pop() if pending else await receive()

    return replay
