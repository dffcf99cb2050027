"""The SDK's generated parts match the server (its error tree, its OpenAPI response bodies), every
error code the API can answer has an SDK exception in the same place of the tree, every route has
a method, and a submission
resent after a lost connection or a 500 carries the same Idempotency-Key, so the API makes one task."""

from __future__ import annotations

import ast
import re
import uuid
from contextlib import closing
from pathlib import Path

import httpx
import pytest

from device_pool.errors import PhoneFleetError
from orchestrator.api.errors import STATUS, status_for
from orchestrator.sdk import AsyncClient, Client, PhoneFleetAPIError, _core, errors, generate
from orchestrator.sdk._base import retry_wait
from orchestrator.sdk.models import TaskOut
from tests.aio import run
from tests.orchestrator.conftest import Api


def test_the_generated_modules_are_current() -> None:
    assert generate.ERRORS_FILE.read_text() == generate.errors_source(), (
        "the server's error tree changed: run python -m orchestrator.sdk.generate"
    )
    assert generate.MODELS_FILE.read_text() == generate.models_source(), (
        "an API response schema changed: run python -m orchestrator.sdk.generate"
    )
    assert generate.STUB_FILE.read_text() == generate.stub_source(), (
        "a client method changed: run python -m orchestrator.sdk.generate"
    )


def test_every_code_the_api_answers_has_its_exception_in_the_same_tree() -> None:
    server = [cls for cls in generate.error_classes() if cls is not PhoneFleetError]
    answered = [cls for cls in server if status_for(cls.__new__(cls)) is not None]  # the class decides
    assert len(answered) > 60 and set(STATUS) <= {*server, PhoneFleetError}
    for cls in answered:
        mine = errors.ERRORS[cls.code]
        assert mine.__name__ == cls.__name__ and mine.code == cls.code and mine.retryable == cls.retryable
        parent = next(base for base in cls.__mro__[1:] if issubclass(base, PhoneFleetError))
        expected = PhoneFleetAPIError if parent is PhoneFleetError else errors.ERRORS[parent.code]
        assert mine.__mro__[1] is expected, (cls, mine.__mro__)
    # What the API answers without an error class (orchestrator/api/errors.py).
    assert issubclass(errors.ERRORS["validation_error"], errors.InvalidRequest)
    assert {"method_not_allowed", "internal_error"} <= set(errors.ERRORS)


def test_an_answer_becomes_the_exception_of_its_code() -> None:
    def answer(status: int, body: object, **headers: str) -> PhoneFleetAPIError:
        return errors.error_from_response(httpx.Response(status, json=body, headers=headers))

    found = answer(404, {"error": "session_not_found", "message": "no session s1"})
    assert isinstance(found, errors.SessionNotFound) and isinstance(found, errors.NotFound)
    assert (found.status, found.code, found.message) == (404, "session_not_found", "no session s1")
    busy = answer(503, {"error": "no_device_available", "message": "none"}, **{"Retry-After": "3"})
    assert isinstance(busy, errors.CapacityError) and busy.retryable and busy.retry_after_s == 3
    # A code from a newer server: the family of its status, the code kept.
    newer = answer(409, {"error": "something_new", "message": "m"})
    assert type(newer) is errors.Conflict and newer.code == "something_new"
    assert type(answer(418, "teapot")) is PhoneFleetAPIError


def test_which_answers_are_sent_again() -> None:
    def wait(status: int, body: object = None, *, safe: bool = True) -> float | None:
        response = httpx.Response(status, json=body) if body is not None else httpx.Response(status, text="x")
        return retry_wait(response, 0, safe=safe, max_retries=3)

    assert wait(503, {"error": "database_unavailable", "message": "m"}, safe=False) == 0.5  # changed nothing
    assert wait(502) == 0.5 and wait(502, safe=False) is None  # a proxy's: maybe acted, so reads only
    assert wait(502, {"error": "device_offline", "message": "m"}) == 0.5
    assert wait(502, {"error": "command_failed", "message": "m"}) is None  # the same answer would come
    assert wait(500, {"error": "internal_error", "message": "m"}) == 0.5
    assert wait(404, {"error": "task_not_found", "message": "m"}) is None
    assert retry_wait(None, 3, safe=True, max_retries=3) is None  # out of tries


class _DropsFirst(httpx.BaseTransport):
    """A network that loses the first request it carries (before the server sees it) and fails the
    second with a proxy's 502: injected, as a real outage cannot be had on demand; the API behind it is real."""

    def __init__(self) -> None:
        self.real = httpx.HTTPTransport()
        self.keys: list[str] = []

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        self.keys.append(request.headers.get("Idempotency-Key", ""))
        if len(self.keys) == 1:
            raise httpx.ConnectError("connection reset", request=request)
        if len(self.keys) == 2:
            self.real.handle_request(request).close()  # the server acts, the answer is lost
            return httpx.Response(502, text="bad gateway")
        return self.real.handle_request(request)


def test_a_submission_is_resent_with_its_key_and_makes_one_task(api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    caller, stranger = api.caller(), api.caller()
    network = _DropsFirst()
    monkeypatch.setattr("orchestrator.sdk.client.time.sleep", lambda s: None)
    with Client(api.url, caller.key, transport=network) as pf:
        task = pf.submit("Open Settings", max_steps=3)
    assert isinstance(task, TaskOut) and task.status == "queued"
    assert len(network.keys) == 3 and len(set(network.keys)) == 1
    listed = caller.http.get("/api/v1/tasks").json()["items"]
    assert [t["id"] for t in listed] == [str(task.id)]

    async def scenario() -> None:
        async with AsyncClient(api.url, caller.key) as pf, AsyncClient(api.url, stranger.key) as theirs:
            again = await pf.submit("Open Settings", max_steps=3, idempotency_key="k-1")
            assert (await pf.submit("Open Settings", max_steps=3, idempotency_key="k-1")).id == again.id
            with pytest.raises(errors.IdempotencyConflict) as conflict:
                await pf.submit("Open Wi-Fi", idempotency_key="k-1")
            assert conflict.value.status == 409 and isinstance(conflict.value, errors.Conflict)
            with pytest.raises(errors.TaskNotFound):
                await theirs.task(task.id)
            with pytest.raises(errors.ValidationError) as invalid:
                await pf.submit("x", max_steps=100000)
            assert invalid.value.details
            assert [t.id async for t in pf.tasks(limit=1)] == [again.id, task.id]  # two pages of one

    run(scenario(), timeout=60)

    # The events socket: the task's events from the first; refusals as the REST API's exceptions.
    with Client(api.url, caller.key) as pf, closing(pf.events(task.id, after=0)) as stream:
        first = next(stream)
        assert (first.type, first.task_id) == ("task.created", task.id)
    with Client(api.url, stranger.key) as theirs, pytest.raises(errors.NotFound) as hidden:
        next(theirs.events(task.id))
    assert hidden.value.status == 404
    with Client(api.url, "pf_nobody_x") as nobody, pytest.raises(errors.Unauthenticated):
        next(nobody.events())


def _sdk_routes() -> list[tuple[str, re.Pattern[str]]]:
    """(method, path pattern) of every request ``orchestrator/sdk/_core.py`` builds, read from its source."""
    tree = ast.parse(Path(_core.__file__).read_text())
    found = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        name = getattr(node.func, "id", None) or getattr(node.func, "attr", None)
        if name == "Call":
            method, path = node.args[0], node.args[1]
            assert isinstance(method, ast.Constant)
            verb = method.value
        elif name in {"_pages", "_download"}:
            verb, path = "GET", node.args[0]
        else:
            continue
        parts = path.values if isinstance(path, ast.JoinedStr) else [path]
        pattern = "".join(re.escape(p.value) if isinstance(p, ast.Constant) else "[^/]+" for p in parts)
        found.append((verb, re.compile(pattern)))
    return found


# Routes the SDK leaves out, and why: the dashboard's cookie login (a browser's), the MCP endpoint
# (an MCP client's), OpenAPI's own pages.
NOT_SDK = re.compile(r"^/(mcp|docs|redoc|openapi\.json)|^/api/v1/auth/log(in|out)$")


def test_every_route_of_the_api_has_an_sdk_method() -> None:
    from orchestrator.api.app import create_app
    from orchestrator.settings import Settings

    spec = create_app(Settings()).openapi()
    mine = _sdk_routes()
    missing = []
    for path, operations in spec["paths"].items():
        concrete = re.sub(r"\{[^}]+\}", "X", path)
        for verb in operations:
            if NOT_SDK.search(path) or verb.upper() == "HEAD":
                continue
            if not any(v == verb.upper() and p.fullmatch(concrete) for v, p in mine):
                missing.append(f"{verb.upper()} {path}")
    assert not missing, missing
    assert [name for name in dir(Client) if name in {"events", "logcat"}] == ["events", "logcat"]


def test_the_sdk_reads_every_kind_of_answer(api: Api, tmp_path: Path) -> None:
    """One call per resource family against the real API, each answer parsed into its model."""
    from orchestrator.db import UserRole
    from orchestrator.sdk import models as m

    operator = api.caller(role=UserRole.OPERATOR)
    name = f"sdk-{uuid.uuid4().hex[:8]}"
    with Client(api.url, operator.key) as pf:
        assert isinstance(pf.me(), m.WhoAmIOut) and pf.healthz()
        assert isinstance(pf.models(), m.ModelListOut) and isinstance(pf.webrtc_config(), m.WebRtcConfigOut)
        assert isinstance(pf.usage(), dict) and pf.evals() == []
        assert pf.update_tenant(retention_days=30).retention_days == 30 == pf.tenant().retention_days

        task = pf.submit("Open Settings", max_steps=3)
        assert list(pf.steps(task.id)) == [] and list(pf.webhook_deliveries(task.id)) == []
        assert pf.download_trajectory(task.id, tmp_path / "t.zip").stat().st_size > 0
        assert pf.cancel(task.id).status == "cancelled"

        issued = pf.create_api_key("sdk-bot", name="ci")
        assert isinstance(issued, m.IssuedKeyOut) and issued.key.startswith("pf_")
        assert issued.id in {k.id for k in pf.api_keys()}
        assert pf.set_user_role("sdk-bot", "admin").role == "admin"
        assert pf.revoke_api_key(issued.id).revoked_at is not None
        assert pf.delete_user("sdk-bot").name == "sdk-bot"

        schedule = pf.create_schedule({"instruction": "Open Settings"}, interval_s=3600)
        assert [s.id for s in pf.schedules()] == [schedule.id] and pf.schedule(schedule.id).paused is False
        assert pf.update_schedule(schedule.id, paused=True).paused is True
        assert list(pf.schedule_runs(schedule.id)) == []
        pf.delete_schedule(schedule.id)
        with pytest.raises(errors.ScheduleNotFound):
            pf.schedule(schedule.id)

        hook = pf.create_webhook("https://hooks.example.com/pf", ["task.status"])
        assert hook.secret and [w.id for w in pf.webhooks()] == [hook.id] == [pf.webhook(hook.id).id]
        assert pf.rotate_webhook_secret(hook.id).secret != hook.secret
        pf.delete_webhook(hook.id)

        created = pf.create_tenant(name)
        assert isinstance(created, m.TenantCreated) and created.admin_key.key.startswith("pf_")
        assert created.id in {t.id for t in pf.tenants(limit=100)}
        assert pf.set_tenant_limits(operator.tenant_id, max_concurrent_tasks=5)["overrides"]["max_concurrent_tasks"] == 5
        assert pf.tenant_limits(operator.tenant_id)["limits"]["max_concurrent_tasks"] == 5
        assert any(e.action.startswith("api_key") for e in pf.audit(tenant_id=str(operator.tenant_id)))

        secret = pf.create_secret("door_pin", "2468")
        assert isinstance(secret, m.SecretOut) and [x.name for x in pf.secrets()] == ["door_pin"]
        assert pf.rotate_secret("door_pin", "1357").rotated_at is not None
        pf.delete_secret("door_pin")
        with pytest.raises(errors.SecretNotFound):
            pf.secret("door_pin")

        phone = pf.create_personal_phone("mine")
        assert [p.id for p in pf.personal_phones()] == [phone.id] and pf.personal_phone(phone.id).name == "mine"
        assert pf.update_personal_phone(phone.id, name="ours").name == "ours"
        with pytest.raises(errors.ConfirmationMismatch):
            pf.delete_personal_phone(phone.id, confirm="mine")
        assert pf.delete_personal_phone(phone.id, confirm="ours").id == phone.id
