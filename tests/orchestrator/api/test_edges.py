"""The HTTP edges answer alike on every route and on the submission fast path (``api/edges.py``,
``api/errors.py``): a body that is not JSON (400), a body over the limit (413), a method the path
does not answer (405, with every method of the path in ``Allow``), oversized headers (431) and a
body that never all arrives (408). The API is a real uvicorn (httptools); the header and short-body
cases are written on raw sockets, as a misbehaving client sends them.
"""

from __future__ import annotations

import http.client
import json
import re
import socket
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from orchestrator.api.edges import BODY_TIMEOUT_S, MAX_BODY_BYTES, MAX_HEADER_BYTES
from orchestrator.db import UserRole
from tests.orchestrator.api.conftest import Api

_SUBMIT = "/api/v1/tasks"  # served by the fast path (on by default)
_ROUTE = "/api/v1/api-keys"  # an ordinary FastAPI route with a body
_JSON = {"Content-Type": "application/json"}
_DEEP = b"[" * 1000 + b"]" * 1000


def _error(r: Any) -> str:
    body = r.json()
    assert body["message"], body
    return body["error"]


def _port(api: Api) -> int:
    return int(api.url.rsplit(":", 1)[1])


@dataclass
class _Answer:
    status: int
    headers: http.client.HTTPMessage
    body: dict[str, Any]
    closed: bool  # the server closed the connection after answering


def _exchange(port: int, request: bytes, *, timeout: float = 10.0) -> _Answer:
    """Send ``request`` as raw bytes and read the answer. ``timeout`` is the hang guard: a server
    that never answers fails the test."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as sock:
        sock.sendall(request)
        response = http.client.HTTPResponse(sock)
        response.begin()
        body = json.loads(response.read())
        try:
            closed = sock.recv(1) == b""
        except ConnectionResetError:
            closed = True
        return _Answer(response.status, response.headers, body, closed)


def _raw(method: str, path: str, key: str, *, body: bytes = b"", length: int | None = None,
         extra: bytes = b"") -> bytes:  # fmt: skip
    head = f"{method} {path} HTTP/1.1\r\nHost: api\r\nAuthorization: Bearer {key}\r\n".encode()
    if body or length is not None:
        size = len(body) if length is None else length
        head += b"Content-Type: application/json\r\nContent-Length: %d\r\n" % size
    return head + extra + b"\r\n" + body


def _body_operations(api: Api) -> Iterator[tuple[str, str]]:
    """(method, path) of every operation that takes a JSON body, path parameters filled in (an
    upload's body is a file or an archive, whatever its bytes: no JSON to break)."""
    schema = api.client().get("/openapi.json").json()
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if "requestBody" in operation:
                assert {"400", "408", "413"} <= set(operation["responses"]), (method, path)
                if "application/json" in operation["requestBody"].get("content", {}):
                    yield method.upper(), re.sub(r"\{[^}]+\}", str(uuid.uuid4()), path)


def test_a_body_that_is_not_json_answers_400_invalid_json_on_every_route(api: Api) -> None:
    caller = api.caller(role=UserRole.ADMIN)
    operations = list(_body_operations(api))
    assert ("POST", _SUBMIT) in operations and len(operations) > 5
    for method, path in operations:
        for body in (b"{broken", _DEEP, b"\xff\xfe\x00garbage"):
            r = caller.http.request(method, path, content=body, headers=_JSON)
            assert r.status_code == 400, (method, path, body[:10], r.text)
            assert _error(r) == "invalid_json", (method, path, r.text)
    # A body with a bad key: the body is parsed first, as FastAPI resolves the route (fast path too).
    r = api.client("pf_00000000_unknown").post(_SUBMIT, content=b"{broken", headers=_JSON)
    assert (r.status_code, _error(r)) == (400, "invalid_json")


def test_a_body_over_the_limit_answers_413_with_or_without_content_length(api: Api) -> None:
    caller = api.caller(role=UserRole.ADMIN)
    big = json.dumps({"instruction": "x", "metadata": {"big": "z" * MAX_BODY_BYTES}}).encode()

    def chunks() -> Iterator[bytes]:
        for start in range(0, len(big), 60_000):
            yield big[start : start + 60_000]

    for path in (_SUBMIT, _ROUTE):
        for content in (big, chunks()):
            r = caller.http.post(path, content=content, headers=_JSON)
            assert r.status_code == 413, (path, r.text[:200])
            assert _error(r) == "payload_too_large"
    # A body within the limit is read and validated as usual: a 422 for the oversized metadata.
    r = caller.http.post(_SUBMIT, json={"instruction": "x", "metadata": {"big": "z" * 100_000}})
    assert (r.status_code, _error(r)) == (422, "validation_error")


def test_a_405_allows_every_method_of_the_path(api: Api) -> None:
    caller = api.caller(role=UserRole.ADMIN)
    cases = [
        ("PUT", _ROUTE, "GET, POST"),  # two routes, GET and POST: Starlette's own 405 named only GET
        ("DELETE", _SUBMIT, "GET, POST"),
        ("PATCH", f"{_SUBMIT}/{uuid.uuid4()}", "GET"),
    ]
    for method, path, expected in cases:
        r = caller.http.request(method, path)
        assert (r.status_code, _error(r)) == (405, "method_not_allowed"), (method, path, r.text)
        assert r.headers["allow"] == expected, path
        allowed = expected.split(", ")
        for other in allowed:  # each one named is answered by a route, not with another 405
            assert caller.http.request(other, path, json={}).status_code != 405, (other, path)


def test_headers_over_16_kib_or_100_fields_answer_431(api: Api) -> None:
    caller = api.caller()
    port = _port(api)
    body = b'{"instruction": "big headers"}'
    huge = b"X-Big: " + b"a" * 1_000_000 + b"\r\n"
    many = b"".join(b"X-H-%d: v\r\n" % i for i in range(500))
    for request in (
        _raw("POST", _SUBMIT, caller.key, body=body, extra=huge),  # the fast path
        _raw("POST", _SUBMIT, caller.key, body=body, extra=many),
        _raw("GET", _SUBMIT, caller.key, extra=huge),  # a route
        _raw("GET", _SUBMIT, caller.key, extra=b"X-Big: " + b"a" * MAX_HEADER_BYTES + b"\r\n"),
    ):
        answer = _exchange(port, request)
        assert (answer.status, answer.body["error"]) == (431, "headers_too_large"), request[:60]
        assert answer.headers["x-request-id"]  # the request id middleware stays in front
    # Headers just under the limit are served as usual, on the fast path and on a route.
    fine = b"X-Fine: " + b"a" * (MAX_HEADER_BYTES - 1024) + b"\r\n"
    assert _exchange(port, _raw("POST", _SUBMIT, caller.key, body=body, extra=fine)).status == 202
    assert _exchange(port, _raw("GET", _SUBMIT, caller.key, extra=fine)).status == 200


def test_a_body_shorter_than_its_content_length_answers_408_and_closes(api: Api) -> None:
    """Both requests wait out the body deadline together; the socket timeout (10 s) is the
    requirement's bound and the hang guard."""
    caller = api.caller(role=UserRole.ADMIN)
    port = _port(api)
    requests = [
        _raw("POST", _SUBMIT, caller.key, body=b'{"instruction": ', length=40),  # the fast path
        _raw("POST", _ROUTE, caller.key, body=b'{"user": ', length=40),  # a route
    ]
    assert BODY_TIMEOUT_S < 10
    with ThreadPoolExecutor(len(requests)) as pool:
        answers = list(pool.map(lambda request: _exchange(port, request, timeout=10.0), requests))
    for answer in answers:
        assert (answer.status, answer.body["error"]) == (408, "body_timeout"), answer.body
        assert answer.headers["connection"] == "close" and answer.closed
        assert answer.headers["x-request-id"]
    # The API serves on: the deadline ended those requests only.
    assert caller.http.post(_SUBMIT, json={"instruction": "after the timeouts"}).status_code == 202
