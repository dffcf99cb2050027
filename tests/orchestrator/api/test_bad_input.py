"""No user input is ever answered with a 5xx: a sweep of malformed requests across every endpoint."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest

from orchestrator.db import UserRole
from tests.orchestrator.api.conftest import Api

_JSON = {"Content-Type": "application/json"}

# (method, path, request kwargs); {task} is a real task of the caller.
BAD_REQUESTS: list[tuple[str, str, dict[str, Any]]] = [
    ("POST", "/api/v1/tasks", {"content": b"{not json", "headers": _JSON}),
    ("POST", "/api/v1/tasks", {"content": b"", "headers": _JSON}),
    ("POST", "/api/v1/tasks", {"content": b"[1, 2, 3]", "headers": _JSON}),
    ("POST", "/api/v1/tasks", {"content": b"null", "headers": _JSON}),
    ("POST", "/api/v1/tasks", {"content": b"\xff\xfe\x00garbage", "headers": _JSON}),
    ("POST", "/api/v1/tasks", {"content": b"instruction=hi", "headers": {"Content-Type": "text/plain"}}),
    ("POST", "/api/v1/tasks", {"content": b"[" * 5000 + b"]" * 5000, "headers": _JSON}),
    ("POST", "/api/v1/tasks", {"content": b'{"instruction": "x", "metadata": {"a": NaN}}', "headers": _JSON}),
    (
        "POST",
        "/api/v1/tasks",
        {"content": b'{"instruction": "x", "metadata": {"a": Infinity}}', "headers": _JSON},
    ),
    ("POST", "/api/v1/tasks", {"content": b'{"instruction": "a\\u0000b"}', "headers": _JSON}),
    ("POST", "/api/v1/tasks", {"content": b'{"instruction": "\\ud800"}', "headers": _JSON}),
    (
        "POST",
        "/api/v1/tasks",
        {"content": b'{"instruction": "x", "metadata": {"k\\u0000": 1}}', "headers": _JSON},
    ),
    (
        "POST",
        "/api/v1/tasks",
        {"content": b'{"instruction": "x", "metadata": {"k": "\\udfff"}}', "headers": _JSON},
    ),
    (
        "POST",
        "/api/v1/tasks",
        {"content": b'{"instruction": "x", "metadata": {"n": 1e999}}', "headers": _JSON},
    ),
    (
        "POST",
        "/api/v1/tasks",
        {"json": {"instruction": "x", "metadata": {"deep": json.loads("[" * 40 + "]" * 40)}}},
    ),
    ("POST", "/api/v1/tasks", {"json": {"instruction": 42}}),
    ("POST", "/api/v1/tasks", {"json": {"instruction": ["a"]}}),
    ("POST", "/api/v1/tasks", {"json": {"instruction": "x", "max_steps": "ten"}}),
    ("POST", "/api/v1/tasks", {"json": {"instruction": "x", "max_steps": 10**30}}),
    ("POST", "/api/v1/tasks", {"json": {"instruction": "x", "max_steps": 2.5}}),
    ("POST", "/api/v1/tasks", {"json": {"instruction": "x", "timeout_s": None}}),
    ("POST", "/api/v1/tasks", {"json": {"instruction": "x", "device_profile": "android 13"}}),
    ("POST", "/api/v1/tasks", {"json": {"instruction": "x", "device_profile": {"blob": "y" * 5000}}}),
    ("POST", "/api/v1/tasks", {"json": {"instruction": "x", "model": ""}}),
    ("POST", "/api/v1/tasks", {"json": {"instruction": "x", "model": "m\u0000"}}),
    ("POST", "/api/v1/tasks", {"json": {"instruction": "x", "webhook_url": "not a url"}}),
    ("POST", "/api/v1/tasks", {"json": {"instruction": "x", "webhook_url": "javascript:alert(1)"}}),
    ("POST", "/api/v1/tasks", {"json": {"instruction": "x", "webhook_url": "https://e.com/" + "a" * 3000}}),
    ("POST", "/api/v1/tasks", {"json": {"instruction": "x", "metadata": {"big": "z" * 200_000}}}),
    ("POST", "/api/v1/tasks", {"content": b"x" * 300_000, "headers": _JSON}),
    ("POST", "/api/v1/tasks", {"json": {"instruction": "x"}, "headers": {"Idempotency-Key": ""}}),
    ("POST", "/api/v1/tasks", {"json": {"instruction": "x"}, "headers": {"Idempotency-Key": "k" * 300}}),
    ("POST", "/api/v1/tasks", {"json": {"instruction": "x"}, "headers": {"Idempotency-Key": "has space"}}),
    ("GET", "/api/v1/tasks", {"params": {"limit": "abc"}}),
    ("GET", "/api/v1/tasks", {"params": {"limit": 0}}),
    ("GET", "/api/v1/tasks", {"params": {"limit": -5}}),
    ("GET", "/api/v1/tasks", {"params": {"status": "bogus"}}),
    ("GET", "/api/v1/tasks", {"params": {"cursor": "!!!"}}),
    ("GET", "/api/v1/tasks", {"params": {"cursor": "eyJ0IjogMX0"}}),  # {"t": 1}
    ("GET", "/api/v1/tasks", {"params": {"cursor": "W10"}}),  # []
    ("GET", "/api/v1/tasks", {"params": {"cursor": "eyJ0IjoiMjAyNS0wMS0wMVQwMDowMDowMCIsImlkIjoiYSJ9"}}),
    ("GET", "/api/v1/tasks", {"params": {"cursor": "c" * 5000}}),
    ("GET", "/api/v1/tasks/not-a-uuid", {}),
    ("GET", f"/api/v1/tasks/{uuid.uuid4()}", {}),
    ("GET", "/api/v1/tasks/{task}/steps", {"params": {"cursor": "eyJpIjogIngifQ"}}),  # {"i": "x"}
    ("GET", "/api/v1/tasks/{task}/steps", {"params": {"cursor": "eyJpIjogOTk5OTk5OTk5OTk5OTk5OTk5OTk5fQ"}}),
    ("GET", "/api/v1/tasks/{task}/steps", {"params": {"limit": 1000}}),
    ("GET", "/api/v1/tasks/{task}/steps/abc/screenshot", {}),
    ("GET", "/api/v1/tasks/{task}/steps/-1/screenshot", {}),
    ("GET", "/api/v1/tasks/{task}/steps/99999999999999999999999/screenshot", {}),
    ("POST", "/api/v1/tasks/not-a-uuid/cancel", {}),
    ("POST", f"/api/v1/tasks/{uuid.uuid4()}/cancel", {}),
    ("DELETE", "/api/v1/tasks/{task}", {}),
    ("GET", "/api/v1/devices", {"params": {"state": "exploded"}}),
    ("GET", "/api/v1/devices", {"params": {"cursor": "%%%"}}),
    ("GET", "/api/v1/devices/123", {}),
    ("GET", f"/api/v1/devices/{uuid.uuid4()}", {}),
    ("GET", "/api/v1/nothing-here", {}),
    ("POST", "/api/v1/api-keys", {"json": {"user": "bad name!"}}),
    ("POST", "/api/v1/api-keys", {"json": {"user": "u", "role": "root"}}),
    ("POST", "/api/v1/api-keys/not-a-uuid/revoke", {}),
    ("POST", f"/api/v1/api-keys/{uuid.uuid4()}/revoke", {}),
]


@pytest.fixture
def admin_client(any_db_api: Api) -> tuple[Any, str]:
    caller = any_db_api.caller(role=UserRole.ADMIN)
    task = caller.http.post("/api/v1/tasks", json={"instruction": "a task to poke at"})
    assert task.status_code == 202, task.text
    return caller.http, task.json()["id"]


def test_bad_input_never_answers_5xx(admin_client: tuple[Any, str]) -> None:
    http, task_id = admin_client
    failures = []
    for method, path, kwargs in BAD_REQUESTS:
        r = http.request(method, path.format(task=task_id), **kwargs)
        if not 400 <= r.status_code < 500:
            failures.append((method, path, str(kwargs)[:80], r.status_code, r.text[:200]))
            continue
        body = r.json()
        assert body["error"] and body["message"], (method, path, body)
    assert not failures, "\n".join(map(str, failures))


def test_bad_auth_headers_never_answer_5xx(any_db_api: Api) -> None:
    http = any_db_api.client()
    for value in [
        "Bearer pf_" + "a" * 5000,
        "Bearer pf_zzzzzzzz_" + "é",
        "bearer  pf_x",
        "Bearer pf_00000000_",
    ]:
        r = http.get("/api/v1/tasks", headers={"Authorization": value.encode()})
        assert r.status_code == 401, (value[:40], r.text)


def test_odd_but_valid_json_round_trips(any_db_api: Api) -> None:
    """Plain JSON the databases must store as given: a 400-digit integer, deep nesting, Unicode keys."""
    caller = any_db_api.caller()
    metadata = {
        "n": 10**400,
        "deep": json.loads("[" * 30 + "]" * 30),
        "ключ": "値 ✓",
        "s": "\\u0000 literally",
    }
    r = caller.http.post("/api/v1/tasks", json={"instruction": "x", "metadata": metadata})
    assert r.status_code == 202, r.text
    assert caller.http.get(f"/api/v1/tasks/{r.json()['id']}").json()["metadata"] == metadata
