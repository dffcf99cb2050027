"""Schemathesis over every operation of the API's OpenAPI schema: no input answers a 5xx.

The app is the real one (``create_app``) served over HTTP on a migrated PostgreSQL database of the
module's own and the real Redis (a key prefix of its own). The schema is the app's, built when the
tests are collected, so routes added later are fuzzed without touching this file.

Each generated request (valid and invalid inputs: Schemathesis's positive and negative modes) is
sent three times: with no credentials, with a member's key and with an admin's key. No answer may
be a server error, except the documented 503 ``no_device_available`` (no phone matched within the
session's ``wait_s``); the admin's answers must also match the schema (the body and content type
of every documented status). Ids in paths are fuzzed, and in about half of
the valid cases replaced by ids of real rows of the callers' tenant (a task with a step and its
screenshot, a phone, a session, an API key), so the routes' code past the lookup runs too (not
for the live-view routes, which would try to reach the phone: the seeded phones are rows only).

Bounded for time, not for correctness: ``MAX_EXAMPLES`` per operation, derandomised (a failure
reproduces), and a session's ``wait_s`` is capped at 0.2 s (a profile no phone matches would
otherwise wait up to a minute; 10 s when the body leaves it out).
"""

from __future__ import annotations

import json
import tempfile
import uuid
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance

from orchestrator.api import create_app
from orchestrator.db import Step, Task, UserRole
from orchestrator.settings import Settings
from tests.aio import run
from tests.databases import open_sessions
from tests.orchestrator.api.private_api import private_api
from tests.orchestrator.conftest import Api, Caller
from tests.orchestrator.factories import make_device

MAX_EXAMPLES = 25
JPEG = b"\xff\xd8\xff\xe0" + b"fuzz" * 16 + b"\xff\xd9"
IDLE_PHONES = 40  # sessions lease one each; enough that a valid create never waits for a phone


@dataclass
class Seeded:
    """Callers of one tenant and real rows of it, by the path parameter that names them."""

    admin: Caller
    member: Caller
    ids: dict[str, Any]


@pytest.fixture(scope="module")
def fuzz_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Api]:
    """A database of the module's own: the fuzzer creates and changes rows (sessions lease phones,
    devices get retired) that no other test must see."""
    rate = {"rate_limit_per_s": 1000, "rate_limit_burst": 10000}
    with private_api(tmp_path_factory.mktemp("fuzz") / "data", auth=rate) as api:
        yield api


@pytest.fixture(scope="module")
def seeded(fuzz_api: Api) -> Seeded:
    admin = fuzz_api.caller(role=UserRole.ADMIN)
    member = fuzz_api.caller(tenant_id=admin.tenant_id)
    victim = fuzz_api.caller(role=UserRole.MEMBER, tenant_id=admin.tenant_id)  # the key the fuzzer may revoke
    shot = Path("tasks") / "fuzz" / "step-000.jpg"
    (fuzz_api.settings.data_dir / shot).parent.mkdir(parents=True, exist_ok=True)
    (fuzz_api.settings.data_dir / shot).write_bytes(JPEG)

    async def rows() -> tuple[uuid.UUID, uuid.UUID]:
        async with open_sessions(fuzz_api.db_url) as sessions, sessions() as session, session.begin():
            task = Task(tenant_id=admin.tenant_id, instruction="fuzz me", created_by=admin.key_id)
            session.add(task)
            await session.flush()
            session.add(Step(task_id=task.id, index=0, screenshot=str(shot), current_app="Settings",
                             thinking="", action_text='do(action="Back")', action={"name": "Back"},
                             result="ok", timings={}))  # fmt: skip
            devices = [await make_device(session) for _ in range(IDLE_PHONES)]
            return task.id, devices[0].id

    task_id, device_id = run(rows())
    created = admin.http.post("/api/v1/sessions", json={"ttl_s": 600, "wait_s": 0})
    assert created.status_code == 201, created.text
    ids = {
        "task_id": task_id, "index": 0, "device_id": device_id, "key_id": victim.key_id,
        "session_id": created.json()["id"],
    }  # fmt: skip
    return Seeded(admin=admin, member=member, ids=ids)


def _schema() -> Any:
    """The app's schema as ``create_app`` builds it now (no database is opened for that)."""
    app = create_app(Settings(data_dir=Path(tempfile.gettempdir()) / "pf-fuzz-schema",
                              database_url="sqlite+aiosqlite:///:memory:"))  # fmt: skip
    schema = schemathesis.openapi.from_dict(app.openapi())
    # Credentials are sent by the test (none, member, admin), not generated.
    schema.config.generation.update(
        max_examples=MAX_EXAMPLES, deterministic=True, with_security_parameters=False, database="none"
    )
    return schema


# Built at collection: one test per operation of whatever the schema holds (schemathesis' lazy
# ``from_fixture`` loader does not run under pytest 9: it sets ``Function._nodeid``).
schema = _schema()


def _valid(name: str, value: Any) -> bool:
    if name == "index":
        return isinstance(value, int) and not isinstance(value, bool)
    try:
        uuid.UUID(str(value))
    except ValueError:
        return False
    return True


# Routes that reach the phone itself (the live view; the device API's files, whose example path
# is valid): the seeded phones are rows without a phone behind them, and each call would wait 10 s
# for it to come online before answering 502.
PHONE_ROUTE_SUFFIXES = ("/webrtc", "/files")


def use_real_ids(case: schemathesis.Case, ids: dict[str, Any]) -> None:
    """In about half the cases whose path ids are well-formed, point them at real rows (deterministically)."""
    params = case.path_parameters or {}
    if (
        not params
        or not all(_valid(k, v) for k, v in params.items())
        or case.path.endswith(PHONE_ROUTE_SUFFIXES)
    ):
        return
    if zlib.crc32(json.dumps(params, sort_keys=True, default=str).encode()) % 2:
        return
    for name in params:
        if name in ids:
            params[name] = str(ids[name]) if name != "index" else ids[name]


def cap_waits(case: schemathesis.Case) -> None:
    """A session's create waits up to ``wait_s`` (default 10 s) for a matching phone: 0.2 s at most here."""
    if case.method == "POST" and case.path == "/api/v1/sessions" and isinstance(case.body, dict):
        wait = case.body.get("wait_s", 10.0)
        if isinstance(wait, int | float) and not isinstance(wait, bool):
            case.body["wait_s"] = min(wait, 0.2)


# The one 5xx that answers input correctly: no phone matches the asked profile within ``wait_s``
# (sessions), a documented 503 with Retry-After. Any other 5xx is a bug.
CAPACITY = {"no_device_available"}


def assert_no_server_error(case: schemathesis.Case, response: Any, who: str) -> None:
    if response.status_code < 500:
        return
    try:
        code = response.json().get("error")
    except ValueError:
        code = None
    if response.status_code == 503 and code in CAPACITY and "retry-after" in response.headers:
        return
    raise AssertionError(
        f"{who}: {response.status_code} {response.text[:500]}\nreproduce: {case.as_curl_command()}"
    )


@schema.parametrize()
def test_no_input_answers_a_server_error(case: schemathesis.Case, fuzz_api: Api, seeded: Seeded) -> None:
    use_real_ids(case, seeded.ids)
    cap_waits(case)
    assert_no_server_error(case, case.call(base_url=fuzz_api.url), "no key")
    member = case.call(base_url=fuzz_api.url, headers={"Authorization": f"Bearer {seeded.member.key}"})
    assert_no_server_error(case, member, "member")
    admin = case.call(base_url=fuzz_api.url, headers={"Authorization": f"Bearer {seeded.admin.key}"})
    assert_no_server_error(case, admin, "admin")
    case.validate_response(admin, checks=[response_schema_conformance, content_type_conformance])
