"""Tenant isolation over every route: tenant B never reaches or sees tenant A's resources.

The routes are the app's own (``create_app``: its OpenAPI schema and its WebSocket routes), walked
when the tests run. Every route whose path names a resource needs an entry in ``ROUTES`` saying
what another tenant gets; ``test_every_route_that_names_a_resource_has_a_rule`` fails for a new
one without it (and for an entry whose route is gone), so new routes are covered by adding a line,
not by remembering to write a test.

Tenant A's resources are made as a client makes them, over HTTP where a route exists (``KINDS``
says how, per path parameter), on a database of this module's own (a session leases a phone).
Then, per route, B calls it with A's ids and must get exactly what an id that does not exist gets
(404, same error code) — or, for the shared pool's phones, the phone without A's lease. Every
route without an id (lists, whoami, config) is read as B, and no id of A's may appear anywhere in
the answer; the event stream (WebSocket) neither opens on A's task nor replays A's events.
"""

from __future__ import annotations

import json
import re
import tempfile
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import httpx
import pytest
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from orchestrator.api import create_app
from orchestrator.db import Step, UserRole
from orchestrator.settings import Settings
from tests.aio import run
from tests.databases import open_sessions
from tests.orchestrator.api.private_api import private_api
from tests.orchestrator.conftest import Api, Caller
from tests.orchestrator.factories import make_device

JPEG = b"\xff\xd8\xff\xe0" + b"tenant A" * 8 + b"\xff\xd9"

# How tenant A's resource is made, by the path parameter that names it (fixture ``world``).
KINDS = {
    "task_id": "A submits a task (POST /api/v1/tasks)",
    "index": "step 0 of that task, with its screenshot, as the worker records it",
    "session_id": "A opens a session (POST /api/v1/sessions); it leases the phone",
    "device_id": "the phone A's session holds",
    "key_id": "A's admin issues a key (POST /api/v1/api-keys)",
    "user_name": "the user that key was issued to (a-bot)",
    "schedule_id": "A creates a schedule (POST /api/v1/schedules)",
    "personal_phone_id": "A makes a personal phone (POST /api/v1/personal-phones); A's task runs on it",
    "subscription_id": "A's admin subscribes a URL to A's events (POST /api/v1/webhooks)",
    "secret_name": "A's admin stores a secret (POST /api/v1/secrets)",
    "tenant_id": "A's own tenant (its limits: /api/v1/tenants/{tenant_id}/limits)",
    "eval_id": "A runs a suite (POST /api/v1/evals)",
    "share_link_id": "A shares its task (POST /api/v1/share-links)",
    "token": "that share link's token (its url's last part)",
}


@dataclass(frozen=True)
class Rule:
    """What tenant B gets from a route called with A's ids.

    ``hidden``: exactly what an id that does not exist gets (404). ``shared``: the shared pool's
    phone, which every tenant sees, without A's lease (any answer but 404/5xx; no id of A's in it).
    ``refused``: 403, for B's admin as for anyone but the operator (the fleet's own routes).
    ``token``: the token in the path is the credential, not a key (a share link's page): whoever
    holds A's token is meant to watch, so the check is that a made-up token reaches nothing.
    ``who``: B's admin, unless the role matters (admins operate the pool). ``on_phone``: the route
    acts on the phone itself, and the world's phone is a row with no phone behind it, so A's own
    read is not checked here (tests/orchestrator/api/test_device_api.py reads a real one).
    """

    expect: Literal["hidden", "shared", "refused", "token"]
    who: Literal["admin", "member"] = "admin"
    on_phone: bool = False


HIDDEN, SHARED, REFUSED = Rule("hidden"), Rule("shared"), Rule("refused")
ON_PHONE = Rule("hidden", on_phone=True)
ROUTES: dict[tuple[str, str], Rule] = {
    ("GET", "/api/v1/tasks/{task_id}"): HIDDEN,
    ("POST", "/api/v1/tasks/{task_id}/cancel"): HIDDEN,
    ("POST", "/api/v1/tasks/{task_id}/confirm"): HIDDEN,
    ("POST", "/api/v1/tasks/{task_id}/takeover"): HIDDEN,
    ("POST", "/api/v1/tasks/{task_id}/handback"): HIDDEN,
    ("POST", "/api/v1/tasks/{task_id}/reply"): HIDDEN,
    ("GET", "/api/v1/tasks/{task_id}/steps"): HIDDEN,
    ("GET", "/api/v1/tasks/{task_id}/steps/{index}/screenshot"): HIDDEN,
    ("GET", "/api/v1/tasks/{task_id}/trajectory"): HIDDEN,
    # A recording is made of a real phone, and this world's phone is a row: A's own read of one is in
    # tests/web/test_recording.py and tests/orchestrator/api/test_recordings.py.
    ("GET", "/api/v1/tasks/{task_id}/recording"): ON_PHONE,
    ("GET", "/api/v1/sessions/{session_id}/recording"): ON_PHONE,
    ("GET", "/api/v1/tasks/{task_id}/webhook-deliveries"): HIDDEN,
    ("POST", "/api/v1/tasks/{task_id}/webrtc"): HIDDEN,
    ("GET", "/api/v1/sessions/{session_id}"): HIDDEN,
    ("DELETE", "/api/v1/sessions/{session_id}"): HIDDEN,
    ("POST", "/api/v1/sessions/{session_id}/keepalive"): HIDDEN,
    ("POST", "/api/v1/sessions/{session_id}/webrtc"): HIDDEN,
    ("GET", "/api/v1/sessions/{session_id}/screenshot"): ON_PHONE,
    ("GET", "/api/v1/sessions/{session_id}/ui"): ON_PHONE,
    ("POST", "/api/v1/sessions/{session_id}/input"): ON_PHONE,
    ("POST", "/api/v1/sessions/{session_id}/launch"): ON_PHONE,
    ("PUT", "/api/v1/sessions/{session_id}/files"): ON_PHONE,
    ("GET", "/api/v1/sessions/{session_id}/files"): ON_PHONE,
    ("POST", "/api/v1/sessions/{session_id}/apps"): ON_PHONE,
    ("GET", "/api/v1/sessions/{session_id}/logcat"): ON_PHONE,
    ("POST", "/api/v1/api-keys/{key_id}/revoke"): HIDDEN,
    ("PUT", "/api/v1/users/{user_name}/role"): HIDDEN,
    ("DELETE", "/api/v1/users/{user_name}"): HIDDEN,
    ("GET", "/api/v1/schedules/{schedule_id}"): HIDDEN,
    ("PATCH", "/api/v1/schedules/{schedule_id}"): HIDDEN,
    ("DELETE", "/api/v1/schedules/{schedule_id}"): HIDDEN,
    ("GET", "/api/v1/schedules/{schedule_id}/runs"): HIDDEN,
    ("GET", "/api/v1/personal-phones/{personal_phone_id}"): HIDDEN,
    ("PATCH", "/api/v1/personal-phones/{personal_phone_id}"): HIDDEN,
    ("DELETE", "/api/v1/personal-phones/{personal_phone_id}"): HIDDEN,
    ("GET", "/api/v1/personal-phones/{personal_phone_id}/export"): HIDDEN,
    ("GET", "/api/v1/personal-phones/{personal_phone_id}/thumbnail"): HIDDEN,
    ("GET", "/api/v1/tenants/{tenant_id}/limits"): HIDDEN,
    ("PUT", "/api/v1/tenants/{tenant_id}/limits"): HIDDEN,
    ("GET", "/api/v1/webhooks/{subscription_id}"): HIDDEN,
    ("GET", "/api/v1/evals/{eval_id}"): HIDDEN,
    ("DELETE", "/api/v1/webhooks/{subscription_id}"): HIDDEN,
    ("POST", "/api/v1/webhooks/{subscription_id}/rotate-secret"): HIDDEN,
    ("GET", "/api/v1/secrets/{secret_name}"): HIDDEN,
    ("PUT", "/api/v1/secrets/{secret_name}"): HIDDEN,
    ("DELETE", "/api/v1/secrets/{secret_name}"): HIDDEN,
    ("GET", "/api/v1/share-links/{share_link_id}"): HIDDEN,
    ("DELETE", "/api/v1/share-links/{share_link_id}"): HIDDEN,
    ("GET", "/share/{token}"): Rule("token"),
    ("POST", "/share/{token}/open"): Rule("token"),
    ("POST", "/share/{token}/webrtc"): Rule("token"),
    ("GET", "/share/{token}/state"): Rule("token"),
    ("GET", "/share/{token}/screenshot"): Rule("token"),
    ("GET", "/share/{token}/recording"): Rule("token"),
    ("GET", "/api/v1/devices/{device_id}"): SHARED,
    # The operator alone changes the shared pool (docs/security.md, "Roles"): a tenant's admin can
    # neither drain nor retire the phone that runs another tenant's work.
    ("POST", "/api/v1/devices/{device_id}/drain"): REFUSED,
    ("POST", "/api/v1/devices/{device_id}/undrain"): REFUSED,
    ("POST", "/api/v1/devices/{device_id}/retire"): REFUSED,
    # A phone leased to A is watched by A only: to B, admin or member, it does not exist
    # (the operator may watch phones no tenant holds; orchestrator/live/access.py).
    ("POST", "/api/v1/devices/{device_id}/webrtc"): Rule("hidden"),
    # The event stream takes its task in the query (?task_id=): checked in its own test below.
    ("WS", "/api/v1/events"): SHARED,
    # The ADB tunnel to A's session's phone: closed 4404 for B, as for a session that does not exist
    # (its own test below).
    ("WS", "/api/v1/sessions/{session_id}/adb"): HIDDEN,
}


def _app_routes() -> dict[tuple[str, str], dict[str, Any]]:
    """Every operation of the app (method, path) → its OpenAPI operation; WebSocket routes as ``WS``."""
    app = create_app(Settings(data_dir=Path(tempfile.gettempdir()) / "pf-isolation-schema",
                              database_url="sqlite+aiosqlite:///:memory:"))  # fmt: skip
    found = {
        (method.upper(), path): {**operation, "components": app.openapi().get("components", {})}
        for path, operations in app.openapi()["paths"].items()
        for method, operation in operations.items()
    }

    def walk(routes: list[Any]) -> Iterator[Any]:
        for route in routes:
            inner = getattr(route, "original_router", None)  # FastAPI's included routers
            yield from walk(inner.routes) if inner is not None else [route]

    for route in walk(app.routes):
        methods = getattr(route, "methods", None)
        if methods is None and hasattr(route, "path"):
            found[("WS", route.path)] = {}
        elif methods is not None and "{" in route.path and not getattr(route, "include_in_schema", True):
            for method in methods - {"HEAD"}:  # a route hidden from the schema still names resources
                found.setdefault((method, route.path), {})
    return found


ROUTES_NOW = _app_routes()


def _names_a_resource(key: tuple[str, str]) -> bool:
    return "{" in key[1] or key[0] == "WS"


def test_every_route_that_names_a_resource_has_a_rule() -> None:
    naming = {key for key in ROUTES_NOW if _names_a_resource(key)}
    missing = sorted(naming - ROUTES.keys())
    assert not missing, (
        f"routes with no tenant-isolation rule: {missing}. Add each to ROUTES in {__file__} "
        "(and its path parameters to KINDS, with how tenant A's resource is made)."
    )
    gone = sorted(ROUTES.keys() - naming)
    assert not gone, f"ROUTES names routes the app no longer has: {gone}"
    params = {p for _, path in naming for p in re.findall(r"{(\w+)}", path)}
    assert params <= KINDS.keys(), f"path parameters with no maker in KINDS: {sorted(params - KINDS.keys())}"


@dataclass
class World:
    """Tenant A's resources (by path parameter) and the callers of both tenants."""

    api: Api
    ids: dict[str, Any]
    a: Caller
    b_admin: Caller
    b_member: Caller
    serial: str  # the phone's ADB address: the operator's to see, no tenant's

    @property
    def private(self) -> set[str]:
        """Ids that are A's alone: none may appear in anything B reads (the phone is shared), nor
        the phone's serial."""
        ids = {str(v) for k, v in self.ids.items() if k not in ("device_id", "index")}
        return ids | {str(self.a.key_id), self.serial}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    with private_api(tmp_path_factory.mktemp("isolation") / "data") as api:
        a = api.caller(role=UserRole.ADMIN)
        b_admin = api.caller(role=UserRole.ADMIN)
        b_member = api.caller(tenant_id=b_admin.tenant_id)

        async def phone() -> str:
            async with open_sessions(api.db_url) as sessions, sessions() as session, session.begin():
                return (await make_device(session)).serial

        serial = run(phone())
        personal = a.http.post("/api/v1/personal-phones", json={"name": "A's phone"})
        assert personal.status_code == 201, personal.text
        # On A's personal phone: its step's screenshot is then the phone's thumbnail.
        on_phone = {"instruction": "A's secret task", "personal_phone_id": personal.json()["id"]}
        task = a.http.post("/api/v1/tasks", json=on_phone)
        assert task.status_code == 202, task.text
        task_id = task.json()["id"]
        shot = Path("tasks") / task_id / "step-000.jpg"
        (api.settings.data_dir / shot).parent.mkdir(parents=True)
        (api.settings.data_dir / shot).write_bytes(JPEG)

        async def step() -> None:
            async with open_sessions(api.db_url) as sessions, sessions() as session, session.begin():
                session.add(Step(task_id=uuid.UUID(task_id), index=0, screenshot=str(shot), current_app="Settings",
                                 thinking="", action_text='do(action="Back")', action={"name": "Back"},
                                 result="ok", timings={}))  # fmt: skip

        run(step())
        opened = a.http.post("/api/v1/sessions", json={"wait_s": 0})
        assert opened.status_code == 201, opened.text
        key = a.http.post("/api/v1/api-keys", json={"user": "a-bot", "role": "member", "name": "a"})
        assert key.status_code == 201, key.text
        hook = a.http.post("/api/v1/webhooks", json={"url": "https://hooks.example.com/a", "events": ["task.status"]})
        assert hook.status_code == 201, hook.text
        schedule = a.http.post("/api/v1/schedules", json={"task": {"instruction": "A's daily task"},
                                                          "cron": "0 9 * * *", "timezone": "Europe/Paris"})
        assert schedule.status_code == 201, schedule.text
        stored = a.http.post("/api/v1/secrets", json={"name": "a_isolation_secret", "value": "A's value"})
        assert stored.status_code == 201, stored.text
        evaluation = a.http.post("/api/v1/evals", json={"suite": "selftest", "models": ["scripted"]})
        assert evaluation.status_code == 201, evaluation.text
        share = a.http.post("/api/v1/share-links", json={"task_id": task_id})
        assert share.status_code == 201, share.text
        ids = {
            "task_id": task_id, "index": 0, "session_id": opened.json()["id"],
            "device_id": opened.json()["device"]["id"], "key_id": key.json()["id"], "user_name": "a-bot",
            "schedule_id": schedule.json()["id"], "personal_phone_id": personal.json()["id"],
            "subscription_id": hook.json()["id"], "secret_name": stored.json()["name"],
            "tenant_id": str(a.tenant_id), "eval_id": evaluation.json()["id"],
            "share_link_id": share.json()["id"], "token": share.json()["url"].rsplit("/", 1)[1],
        }  # fmt: skip
        assert ids.keys() == KINDS.keys()
        yield World(api=api, ids=ids, a=a, b_admin=b_admin, b_member=b_member, serial=serial)


def _example_body(operation: dict[str, Any]) -> Any:
    """A valid body for the operation (its schema's first example), so B's call is not a 422."""
    content = operation.get("requestBody", {}).get("content", {}).get("application/json")
    if content is None:
        return None
    schema = content["schema"]
    if "$ref" in schema:
        schema = operation["components"]["schemas"][schema["$ref"].rsplit("/", 1)[1]]
    examples = schema.get("examples") or [{}]
    return examples[0]


def _call(
    http: httpx.Client, method: str, path: str, params: dict[str, Any], operation: dict[str, Any]
) -> httpx.Response:
    url = path.format(**params)
    body = _example_body(operation)
    # Required query parameters (a device file's path) take their schema's first example.
    query = {p["name"]: p["schema"]["examples"][0] for p in operation.get("parameters", [])
             if p["in"] == "query" and p.get("required")}  # fmt: skip
    return http.request(method, url, params=query, **({"json": body} if body is not None else {}))


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield str(k)
            yield from _strings(v)
    elif isinstance(value, list):
        for v in value:
            yield from _strings(v)
    elif value is not None:
        yield str(value)


def _leaks(response: httpx.Response, private: set[str]) -> set[str]:
    try:
        body = response.json()
    except ValueError:
        return {p for p in private if p in response.text}
    return {p for s in _strings(body) for p in private if p in s}


HTTP_ROUTES = sorted(key for key in ROUTES if key[0] != "WS" and key in ROUTES_NOW)


def _masked(response: httpx.Response, params: dict[str, Any]) -> tuple[int, str]:
    """The status and body with the ids the caller sent replaced (a 404 names the id it was asked)."""
    text = response.text
    for value in params.values():
        text = text.replace(str(value), "<id>")
    return response.status_code, text


@pytest.mark.parametrize(("method", "path"), HTTP_ROUTES, ids=[f"{m} {p}" for m, p in HTTP_ROUTES])
def test_another_tenants_resource_is_out_of_reach(world: World, method: str, path: str) -> None:
    rule = ROUTES[(method, path)]
    operation = ROUTES_NOW[(method, path)]
    b = world.b_admin if rule.who == "admin" else world.b_member
    if rule.expect == "token":
        made_up = f"pfs_{uuid.uuid4().hex}"
        offer = {"type": "offer", "sdp": "v=0", "open_id": str(uuid.uuid4())} if path.endswith("/webrtc") else None
        query = {"open_id": str(uuid.uuid4())} if path.endswith("/state") else None
        theirs = b.http.request(method, path.format(token=made_up), json=offer, params=query)
        if path == "/share/{token}":  # the page is the same HTML for every token; it holds no data
            assert theirs.status_code == 200 and not _leaks(theirs, world.private), theirs.text
        else:
            assert theirs.status_code == 404 and theirs.json()["error"] == "share_link_not_found", theirs.text
        return
    params = {name: world.ids[name] for name in re.findall(r"{(\w+)}", path)}
    theirs = _call(b.http, method, path, params, operation)
    assert theirs.status_code < 500, theirs.text
    leaked = _leaks(theirs, world.private - {str(v) for v in params.values()})
    assert not leaked, (leaked, theirs.status_code, theirs.text)
    if rule.expect == "hidden":
        # Exactly what an id that does not exist gets: nothing tells B that A's exists.
        nobody = {name: (0 if name == "index" else uuid.uuid4()) for name in params}
        missing = _call(b.http, method, path, nobody, operation)
        assert missing.status_code == 404, missing.text
        assert _masked(theirs, params) == _masked(missing, nobody), (theirs.text, missing.text)
        if method == "GET" and not rule.on_phone:  # the ids are real: A itself reads them
            mine = _call(world.a.http, method, path, params, operation)
            assert mine.status_code == 200, mine.text
    elif rule.expect == "refused":
        assert theirs.status_code == 403 and theirs.json()["error"] == "permission_denied", theirs.text
    else:
        assert theirs.status_code != 404, theirs.text  # the shared phone is there for everyone


READS = sorted(
    path for (method, path) in ROUTES_NOW if method == "GET" and "{" not in path and path.startswith("/api/")
)


def test_reads_without_an_id_never_show_another_tenants_items(world: World) -> None:
    seen_by_a: set[str] = set()
    for path in READS:
        for b in (world.b_admin, world.b_member):
            response = b.http.get(
                path, params={"limit": 100} if "limit" in json.dumps(ROUTES_NOW[("GET", path)]) else {}
            )
            assert response.status_code < 500, (path, response.text)
            leaked = _leaks(response, world.private)
            assert not leaked, f"{path} shows tenant B {leaked}: {response.text[:500]}"
        mine = world.a.http.get(path)
        seen_by_a |= {p for p in world.private if p in mine.text}
    # Not vacuous: the same reads show A its task, session and keys.
    assert {str(world.ids["task_id"]), str(world.ids["session_id"]), str(world.ids["key_id"])} <= seen_by_a, (
        READS
    )


def test_the_event_stream_neither_opens_on_nor_replays_another_tenants_task(world: World) -> None:
    assert ("WS", "/api/v1/events") in ROUTES_NOW
    base = world.api.url.replace("http://", "ws://") + "/api/v1/events"
    headers = {"Authorization": f"Bearer {world.b_admin.key}"}
    for task_id in (world.ids["task_id"], uuid.uuid4()):  # A's task, and one that does not exist
        with (
            connect(f"{base}?task_id={task_id}", additional_headers=headers, open_timeout=10) as ws,
            pytest.raises(ConnectionClosed) as closed,
        ):
            ws.recv(timeout=10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4404, closed.value
    # Everything B's tenant may see, from the first event on, up to B's own new task: none of A's.
    own = world.b_admin.http.post("/api/v1/tasks", json={"instruction": "B's task"})
    assert own.status_code == 202, own.text
    seen: list[dict[str, Any]] = []
    with connect(f"{base}?after=0", additional_headers=headers, open_timeout=10) as ws:
        while not any(own.json()["id"] in json.dumps(m) for m in seen):
            seen.append(json.loads(ws.recv(timeout=10)))
    leaked = {p for m in seen for p in world.private if p in json.dumps(m)}
    assert not leaked, seen


def test_the_adb_tunnel_does_not_open_on_another_tenants_session(world: World) -> None:
    """B's admin gets what a session that does not exist gets (4404); A's own call passes the
    tenant check (its world phone is a row with no phone behind it: 4502, it did not answer)."""
    assert ("WS", "/api/v1/sessions/{session_id}/adb") in ROUTES_NOW
    base = world.api.url.replace("http://", "ws://") + "/api/v1/sessions/{}/adb"

    def close_code(session_id: object, key: str) -> int:
        headers = {"Authorization": f"Bearer {key}"}
        with (
            connect(base.format(session_id), additional_headers=headers, open_timeout=10) as ws,
            pytest.raises(ConnectionClosed) as closed,
        ):
            ws.recv(timeout=15)
        assert closed.value.rcvd is not None, closed.value
        return closed.value.rcvd.code

    assert close_code(world.ids["session_id"], world.b_admin.key) == 4404
    assert close_code(uuid.uuid4(), world.b_admin.key) == 4404
    assert close_code(world.ids["session_id"], world.a.key) in (4409, 4502)
