"""Tenant webhook subscriptions: the API (admin, tenant-scoped, secret shown once, rotation), and the
relay and deliverer on both databases POSTing to a real HTTP server on 127.0.0.1 — beside a task's
own webhook_url, for the types a subscription names, signed with its secret of the moment."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orchestrator.db import UserRole, WebhookDelivery, WebhookStatus, WebhookSubscription, utcnow
from orchestrator.db.database import Database
from orchestrator.services.auth import Principal
from orchestrator.services.webhook_subscriptions import SubscriptionService, SubscriptionSpec, new_secret
from tests.aio import run
from tests.asgi import serve_asgi
from tests.databases import emptied, open_sessions
from tests.orchestrator.api.conftest import Api
from tests.orchestrator.factories import make_tenant
from tests.orchestrator.test_webhooks import (
    Receiver,
    add_events,
    deliveries,
    eventually,
    signature_ok,
    webhooks_pg_url,  # noqa: F401  (a fixture: the module's own database)
    webhooks_running,
)
from tests.worker.runtask.test_subscriptions import Inbox

SUB = "/api/v1/webhooks"


def test_subscriptions_are_the_admins_of_one_tenant_and_show_their_secret_once(api: Api) -> None:
    admin = api.caller(role=UserRole.ADMIN)
    member = api.caller(tenant_id=admin.tenant_id)
    stranger = api.caller(role=UserRole.ADMIN)
    body = {"url": "https://hooks.example.com/pf", "events": ["task.status", "task.status", "task.step"]}

    created = admin.http.post(SUB, json=body)
    assert created.status_code == 201, created.text
    sub = created.json()
    assert sub["secret"].startswith("whsec_") and len(sub["secret"]) > 40, sub
    assert sub["events"] == ["task.status", "task.step"] and sub["url"] == body["url"], sub
    listed = admin.http.get(SUB).json()
    assert [s["id"] for s in listed] == [sub["id"]] and "secret" not in listed[0], listed
    one = admin.http.get(f"{SUB}/{sub['id']}").json()
    assert one["id"] == sub["id"] and "secret" not in one and one["secret_rotated_at"] is None, one

    rotated = admin.http.post(f"{SUB}/{sub['id']}/rotate-secret")
    assert rotated.status_code == 200 and rotated.json()["secret"] != sub["secret"], rotated.text
    assert admin.http.get(f"{SUB}/{sub['id']}").json()["secret_rotated_at"] is not None

    # Another tenant's admin finds nothing; a member of the tenant may not touch them.
    assert stranger.http.get(SUB).json() == []
    for method, path in (("GET", f"{SUB}/{sub['id']}"), ("DELETE", f"{SUB}/{sub['id']}"),
                         ("POST", f"{SUB}/{sub['id']}/rotate-secret")):  # fmt: skip
        answer = stranger.http.request(method, path)
        assert answer.status_code == 404 and answer.json()["error"] == "webhook_subscription_not_found", (
            answer.text
        )
    assert member.http.get(SUB).status_code == 403
    assert member.http.post(SUB, json=body).status_code == 403

    assert admin.http.delete(f"{SUB}/{sub['id']}").status_code == 204
    assert admin.http.get(f"{SUB}/{sub['id']}").status_code == 404
    assert admin.http.get(SUB).json() == []


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "ftp://hooks.example.com/pf", "events": ["task.status"]}, "url"),
        ({"url": "https://hooks.example.com/pf", "events": []}, "events"),
        ({"url": "https://hooks.example.com/pf", "events": ["task.nonsense"]}, "events"),
        ({"url": "https://hooks.example.com/pf"}, "events"),
        ({"url": "https://hooks.example.com/pf", "events": ["task.status"], "secret": "mine"}, "secret"),
    ],
)
def test_a_bad_subscription_is_refused_saying_why(api: Api, body: dict[str, object], field: str) -> None:
    answer = api.caller(role=UserRole.ADMIN).http.post(SUB, json=body)
    assert answer.status_code == 422 and field in answer.text, answer.text


@pytest.fixture(params=["postgresql", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    pg = request.getfixturevalue("webhooks_pg_url") if request.param == "postgresql" else ""
    return emptied(request.param, pg, tmp_path, "tasks, events, webhook_deliveries, webhook_subscriptions")


@pytest.fixture
def inbox() -> Iterator[tuple[Inbox, str]]:
    box = Inbox()
    with serve_asgi(box, lifespan="off") as base:
        yield box, base


Sessions = async_sessionmaker[AsyncSession]


async def subscribe(
    sessions: Sessions, tenant_id: uuid.UUID, url: str, events: list[str]
) -> WebhookSubscription:
    async with sessions() as session, session.begin():
        row = WebhookSubscription(tenant_id=tenant_id, url=url, events=events, secret=new_secret(),
                                  created_at=utcnow())  # fmt: skip
        session.add(row)
    return row


def test_a_subscription_gets_its_types_of_its_tenants_events_beside_the_task_url(
    url: str, inbox: tuple[Inbox, str]
) -> None:
    box, base = inbox
    own = Receiver()

    async def scenario() -> tuple[list[WebhookDelivery], uuid.UUID, list[int], list[int], str]:
        async with open_sessions(url) as sessions:
            async with sessions() as session, session.begin():
                tenant, other = await make_tenant(session), await make_tenant(session)
            sub = await subscribe(sessions, tenant.id, f"{base}/sub", ["task.status"])
            await subscribe(sessions, other.id, f"{base}/other", ["task.status", "task.step"])
            with serve_asgi(own, lifespan="off") as own_url:
                # One task with its own URL, one without: the subscription hears both.
                task_id, named = await add_events(
                    sessions, f"{own_url}/own", ["task.status", "task.step"], tenant=tenant
                )
                _, unnamed = await add_events(sessions, None, ["task.created", "task.status"], tenant=tenant)
                async with webhooks_running(url):
                    rows = await eventually(lambda: _settled(sessions, 4), "four deliveries, none pending")
        return rows, task_id, named, unnamed, sub.secret

    rows, _task_id, named, unnamed, secret = run(scenario())
    # task.status of both tasks to the subscription; both events of the named task to its own URL.
    by_target = sorted((r.event_id, r.subscription_id is not None) for r in rows)
    assert by_target == sorted([(named[0], True), (unnamed[1], True), (named[0], False), (named[1], False)])
    assert all(r.status == WebhookStatus.DELIVERED for r in rows)
    posted = box.at("/sub")
    assert sorted(json.loads(b)["id"] for _h, b in posted) == sorted([named[0], unnamed[1]])
    assert all(signature_ok(secret.encode(), h, b) for h, b in posted)
    assert box.at("/other") == []  # another tenant's subscription
    assert len(own.requests) == 2  # the task URL, signed with auth.webhook_secret as before (Receiver checks)


async def _settled(sessions: Sessions, count: int) -> list[WebhookDelivery] | None:
    rows = await deliveries(sessions)
    return rows if len(rows) >= count and all(r.status != WebhookStatus.PENDING for r in rows) else None


def test_a_rotated_secret_signs_the_next_posts_and_a_deleted_subscription_gets_none(
    url: str, inbox: tuple[Inbox, str]
) -> None:
    box, base = inbox

    async def scenario() -> tuple[str, str, list[int], list[int]]:
        async with open_sessions(url) as sessions:
            async with sessions() as session, session.begin():
                tenant = await make_tenant(session)
            service = SubscriptionService(Database(sessions))
            admin = Principal(key_id=uuid.uuid4(), tenant_id=tenant.id, user_id=uuid.uuid4(), role=UserRole.ADMIN)
            sub, old = await service.create(
                admin, SubscriptionSpec(url=f"{base}/sub", events=["task.status"])  # type: ignore[arg-type]
            )
            async with webhooks_running(url):
                _, before = await add_events(sessions, None, ["task.status"], tenant=tenant)
                await eventually(lambda: _settled(sessions, 1), "the first delivery")
                _, new = await service.rotate_secret(admin, sub.id)
                _, after = await add_events(sessions, None, ["task.status"], tenant=tenant)
                await eventually(lambda: _settled(sessions, 2), "the second delivery")
                await service.delete(admin, sub.id)
                await add_events(sessions, None, ["task.status"], tenant=tenant)
                # A task with its own URL after it, to know the relay has passed the deleted one's event.
                await add_events(sessions, f"{base}/own", ["task.status"], tenant=tenant)
                await eventually(lambda: _settled_at(box, "/own"), "the task URL's delivery")
        return old, new, before, after

    old, new, before, after = run(scenario())
    posted = {json.loads(b)["id"]: (h, b) for h, b in box.at("/sub")}
    assert sorted(posted) == sorted(before + after), posted.keys()  # nothing after the delete
    assert signature_ok(old.encode(), *posted[before[0]]) and not signature_ok(new.encode(), *posted[before[0]])
    assert signature_ok(new.encode(), *posted[after[0]]) and not signature_ok(old.encode(), *posted[after[0]])


async def _settled_at(box: Inbox, path: str) -> bool:
    return bool(box.at(path))


def test_a_tenant_has_at_most_its_cap_of_subscriptions(api: Api) -> None:
    admin = api.caller(role=UserRole.ADMIN)
    other = api.caller(role=UserRole.ADMIN)
    most = api.settings.webhooks.max_subscriptions_per_tenant  # 10 unless set
    body = {"url": "https://hooks.example.com/pf", "events": ["task.status"]}
    made = [admin.http.post(SUB, json=body) for _ in range(most)]
    assert [r.status_code for r in made] == [201] * most, made[-1].text
    refused = admin.http.post(SUB, json=body)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"] == "limit_reached", refused.text
    assert f"webhooks.max_subscriptions_per_tenant = {most}" in refused.json()["message"], refused.text
    assert other.http.post(SUB, json=body).status_code == 201  # the cap is per tenant
    # Deleting one makes room again.
    assert admin.http.delete(f"{SUB}/{made[0].json()['id']}").status_code == 204
    assert admin.http.post(SUB, json=body).status_code == 201
