"""A tenant's webhook subscription end to end: a task that named no webhook_url, run by a real worker
on the virtual phone, and its completion event POSTed signed with the subscription's own secret to a
real HTTP receiver on 127.0.0.1 by the relay and deliverer ``phonefleet pool`` runs."""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from sqlalchemy import select

from orchestrator.db import Tenant, UserRole
from orchestrator.db.database import Database
from orchestrator.services.auth import issue_api_key
from orchestrator.services.webhooks import serve_webhooks
from orchestrator.settings import Settings
from tests.aio import run
from tests.asgi import serve_asgi
from tests.conditions import wait_until
from tests.databases import open_sessions
from tests.orchestrator.factories import make_tenant
from tests.orchestrator.test_webhooks import signature_ok
from tests.processes import ReferenceModel
from tests.worker.runtask.conftest import Api, LoopThread, Pool, StartWorker

WIFI = "Open Settings and turn on Wi-Fi"


@dataclass
class Inbox:
    """A webhook endpoint (ASGI) that keeps every POST, by path."""

    posts: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        body, more = b"", True
        while more:
            message = await receive()
            body, more = body + message.get("body", b""), message.get("more_body", False)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        with self._lock:
            self.posts.append((scope["path"], headers, body))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    def at(self, path: str) -> list[tuple[dict[str, str], bytes]]:
        with self._lock:
            return [(headers, body) for p, headers, body in self.posts if p == path]


@contextmanager
def webhooks_served(settings: Settings) -> Iterator[None]:
    """The relay and deliverer, as ``phonefleet pool`` runs them, on a loop of their own."""
    loop, stop = LoopThread(), asyncio.Event()

    async def serve() -> None:
        async with open_sessions(settings.database_url) as sessions:
            await serve_webhooks(settings, Database(sessions), dialect="postgresql", stop=stop)

    served = asyncio.run_coroutine_threadsafe(serve(), loop.loop)
    try:
        yield
    finally:
        loop.loop.call_soon_threadsafe(stop.set)
        served.result(30)
        loop.close()


def admin_client(api: Api, pg_url: str, *, tenant_id: uuid.UUID | None) -> httpx.Client:
    """An admin key of ``tenant_id`` (None: a new tenant's)."""

    async def key() -> str:
        async with open_sessions(pg_url) as sessions, sessions() as session, session.begin():
            tenant = await make_tenant(session) if tenant_id is None else await session.get_one(Tenant, tenant_id)
            return (await issue_api_key(session, tenant_id=tenant.id, user_name="admin", role=UserRole.ADMIN)).key

    return httpx.Client(base_url=api.url, headers={"Authorization": f"Bearer {run(key())}"}, timeout=15)


def only_tenant(pg_url: str) -> uuid.UUID:
    async def read() -> uuid.UUID:
        async with open_sessions(pg_url) as sessions, sessions() as session:
            (tenant_id,) = (await session.scalars(select(Tenant.id))).all()
            return tenant_id

    return run(read())


def test_a_subscription_gets_the_signed_completion_of_a_task_that_named_no_url(
    api: Api, pool: Pool, start_worker: StartWorker, reference_model: ReferenceModel, pg_url: str
) -> None:
    inbox = Inbox()
    with serve_asgi(inbox, lifespan="off") as hooks_url, webhooks_served(api.settings):
        ours = admin_client(api, pg_url, tenant_id=only_tenant(pg_url))
        theirs = admin_client(api, pg_url, tenant_id=None)
        created = ours.post("/api/v1/webhooks", json={"url": f"{hooks_url}/ours", "events": ["task.status"]})
        assert created.status_code == 201, created.text
        secret = created.json()["secret"].encode()
        other = theirs.post("/api/v1/webhooks", json={"url": f"{hooks_url}/theirs", "events": ["task.status"]})
        assert other.status_code == 201, other.text

        start_worker(reference_model.base_url)
        pool.shell("settings put global wifi_on 0")
        task = api.submit(WIFI, timeout_s=120)
        assert task["webhook_url"] is None
        done = api.wait_status(task["id"], ("succeeded", "failed"), timeout=90)
        assert done["status"] == "succeeded", done

        def completion() -> dict[str, Any] | None:
            for headers, body in inbox.at("/ours"):
                event = httpx.Response(200, content=body).json()
                if event["payload"].get("to") == "succeeded":
                    assert signature_ok(secret, headers, body), headers  # the subscription's secret
                    assert headers["x-phonefleet-event"] == "task.status"
                    return event
            return None

        event = wait_until(completion, timeout=30, what="the completion event at the subscription")
        wait_until(lambda: len(inbox.at("/ours")) >= 3, timeout=30, what="every task.status of the task")

    assert event["task_id"] == task["id"]
    payload = event["payload"]
    assert payload["message"] == done["message"] and payload["message"], payload
    # A reference to the final screenshot, not the image: it is there, behind the tenant's key.
    steps = api.http.get(f"/api/v1/tasks/{task['id']}/steps").json()["items"]
    assert payload["final_screenshot_url"] == steps[-1]["screenshot_url"], (payload, steps[-1])
    image = api.http.get(payload["final_screenshot_url"])
    assert image.status_code == 200 and image.content[:2] == b"\xff\xd8"
    # Every task.status of the task came (queued→leasing→running→succeeded), each once, all signed.
    statuses = sorted((httpx.Response(200, content=b).json() for _h, b in inbox.at("/ours")), key=lambda e: e["id"])
    assert [e["payload"]["to"] for e in statuses] == ["leasing", "running", "succeeded"], statuses
    assert all(signature_ok(secret, h, b) for h, b in inbox.at("/ours"))
    assert inbox.at("/theirs") == []  # another tenant's subscription hears nothing of this task
