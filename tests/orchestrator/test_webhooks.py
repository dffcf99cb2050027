"""Webhooks end to end on real databases: the relay (events → delivery rows), the deliverer POSTing to a
real HTTP server on 127.0.0.1 that checks every signature, retries, giving up, and two deliverers at once.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import hashlib
import hmac
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from orchestrator.db import Event, Task, WebhookDelivery, WebhookStatus, utcnow
from orchestrator.db.database import Database
from orchestrator.services.webhook_relay import WebhookRelay
from orchestrator.services.webhooks import WebhookDeliverer, retry_delay_s, run_webhooks
from orchestrator.settings import WebhookSettings, load_settings
from tests.aio import run
from tests.asgi import closed_port, serve_asgi
from tests.conditions import GiveUp, wait_until
from tests.databases import emptied, migrate_to_head, open_sessions, throwaway_postgres, truncate
from tests.databases import sqlite_url as _sqlite_url
from tests.orchestrator.api.conftest import Api
from tests.orchestrator.factories import make_task
from tests.processes import REPO, AdbServer, stop_process

SECRET = b"whsec-test-4f1c9a"
WAIT_S = 20.0
T = TypeVar("T")
FAST = {"timeout_s": 2.0, "max_attempts": 3, "backoff_s": [0.05], "poll_s": 0.02, "concurrency": 8}


def signature_ok(secret: bytes, headers: dict[str, str], body: bytes) -> bool:
    """What an integrator does (docs/api.md, "Verifying a webhook")."""
    timestamp = headers["x-phonefleet-timestamp"]
    expected = "sha256=" + hmac.new(secret, timestamp.encode() + b"." + body, hashlib.sha256).hexdigest()
    fresh = abs(time.time() - int(timestamp)) < 300
    return fresh and hmac.compare_digest(expected, headers["x-phonefleet-signature"])


@dataclass
class Received:
    headers: dict[str, str]
    body: bytes

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook endpoint (ASGI): answers 401 to a bad signature, else the next of ``statuses``, then 200."""

    statuses: list[int] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        body, more = b"", True
        while more:
            message = await receive()
            body += message.get("body", b"")
            more = message.get("more_body", False)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        if not signature_ok(SECRET, headers, body):
            status = 401
        else:
            with self._lock:
                self.requests.append(Received(headers, body))
                status = self.statuses.pop(0) if self.statuses else 200
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"content-type", b"text/plain")]}
        )
        await send({"type": "http.response.body", "body": b"ok" if status < 300 else b"try later"})


@pytest.fixture
def receiver() -> Iterator[tuple[Receiver, str]]:
    hook = Receiver()
    with serve_asgi(hook, lifespan="off") as url:
        yield hook, f"{url}/hooks/phonefleet"


@pytest.fixture(scope="module")
def webhooks_pg_url() -> Iterator[str]:
    # A database of the module's own: the relay considers every event in it, not just this test's.
    with throwaway_postgres() as db:
        migrate_to_head(db.url)
        yield db.url


@pytest.fixture(params=["postgresql", "sqlite"])
def url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    pg = request.getfixturevalue("webhooks_pg_url") if request.param == "postgresql" else ""
    return emptied(request.param, pg, tmp_path, "tasks, events, webhook_deliveries")


def dialect_of(url: str) -> str:
    return "sqlite" if url.startswith("sqlite") else "postgresql"


async def add_events(
    sessions: async_sessionmaker[AsyncSession], webhook_url: str | None, types: list[str], **task: Any
) -> tuple[uuid.UUID, list[int]]:
    """A task (with ``webhook_url``) and one committed event per type, in order."""
    async with sessions() as session, session.begin():
        row = await make_task(session, webhook_url=webhook_url, **task)
        ids = []
        for i, type_ in enumerate(types):
            event = Event(tenant_id=row.tenant_id, task_id=row.id, type=type_, payload={"n": i},
                          created_at=task.get("created_at", utcnow()))  # fmt: skip
            session.add(event)
            await session.flush()
            ids.append(event.id)
        return row.id, ids


async def deliveries(sessions: async_sessionmaker[AsyncSession]) -> list[WebhookDelivery]:
    async with sessions() as session:
        return list(await session.scalars(select(WebhookDelivery).order_by(WebhookDelivery.event_id)))


async def eventually(check: Callable[[], Awaitable[T]], what: str) -> T:
    """Await ``check()`` until it returns something truthy, or fail after ``WAIT_S``."""
    deadline = time.monotonic() + WAIT_S
    while True:
        value = await check()
        if value:
            return value
        if time.monotonic() > deadline:
            raise TimeoutError(f"not within {WAIT_S}s: {what}")
        await asyncio.sleep(0.02)


@asynccontextmanager
async def webhooks_running(
    url: str, *, transport: httpx.AsyncBaseTransport | None = None, **config: Any
) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Relay + deliverer (as ``phonefleet pool`` runs them) on an engine of their own, until the block
    ends; ``transport``: the deliverer's client's (``TargetPolicy.transport()`` in the pool)."""
    settings = WebhookSettings(**{**FAST, **config})
    async with open_sessions(url) as sessions, httpx.AsyncClient(transport=transport) as client:
        db = Database(sessions)
        relay = WebhookRelay(db, dialect=dialect_of(url), event_types=settings.events)
        deliverer = WebhookDeliverer(
            db, dialect=dialect_of(url), secret=SECRET, settings=settings, client=client
        )
        stop = asyncio.Event()
        loop = asyncio.create_task(run_webhooks(relay, deliverer, stop, poll_s=settings.poll_s))
        try:
            yield sessions
        finally:
            stop.set()
            await loop


def settled(rows: list[WebhookDelivery], count: int) -> bool:
    return len(rows) >= count and all(r.status != WebhookStatus.PENDING for r in rows)


def test_events_of_a_task_with_a_webhook_are_posted_signed(url: str, receiver: tuple[Receiver, str]) -> None:
    hook, hook_url = receiver

    async def scenario() -> tuple[list[WebhookDelivery], list[int], uuid.UUID]:
        async with open_sessions(url) as sessions:
            task_id, ids = await add_events(
                sessions, hook_url, ["task.created", "task.status", "device.leased", "task.step"]
            )
            await add_events(sessions, None, ["task.created", "task.status"])  # no webhook_url
            async with webhooks_running(url):
                rows = await eventually(lambda: settled_deliveries(sessions, 3), "three deliveries, none pending")
        return rows, ids, task_id

    rows, ids, task_id = run(scenario())
    # device.leased is not a webhook event by default; the task without a webhook_url gets no rows.
    wanted = [ids[0], ids[1], ids[3]]
    assert [r.event_id for r in rows] == wanted
    assert all(
        (r.status, r.attempts, r.last_status_code, r.last_error) == (WebhookStatus.DELIVERED, 1, 200, None)
        for r in rows
    )
    assert all(r.delivered_at is not None and r.url == hook_url for r in rows)
    by_event = {r.json["id"]: r for r in hook.requests}
    assert sorted(by_event) == wanted and len(hook.requests) == 3, "each once"
    step = by_event[ids[3]]
    assert step.json["type"] == "task.step" and step.json["task_id"] == str(task_id)
    assert step.json["payload"] == {"n": 3} and set(step.json) == {
        "id",
        "type",
        "task_id",
        "created_at",
        "payload",
    }
    assert step.headers["x-phonefleet-event"] == "task.step"
    assert step.headers["content-type"] == "application/json"
    assert {r.headers["x-phonefleet-delivery"] for r in hook.requests} == {str(r.id) for r in rows}


async def settled_deliveries(sessions: async_sessionmaker[AsyncSession], count: int) -> list[WebhookDelivery] | None:
    rows = await deliveries(sessions)
    return rows if settled(rows, count) else None


def test_a_failed_attempt_is_retried_until_the_receiver_takes_it(
    url: str, receiver: tuple[Receiver, str]
) -> None:
    hook, hook_url = receiver
    hook.statuses = [500, 503]

    async def scenario() -> list[WebhookDelivery]:
        async with open_sessions(url) as sessions:
            await add_events(sessions, hook_url, ["task.status"])
            async with webhooks_running(url, max_attempts=5):
                return await eventually(lambda: settled_deliveries(sessions, 1), "delivered")

    (row,) = run(scenario())
    assert (row.status, row.attempts, row.last_status_code, row.last_error) == (
        WebhookStatus.DELIVERED, 3, 200, None,
    )  # fmt: skip
    assert len(hook.requests) == 3
    assert {r.headers["x-phonefleet-delivery"] for r in hook.requests} == {str(row.id)}, "one delivery id"
    assert len({r.body for r in hook.requests}) == 1, "the same body each time"


@pytest.mark.parametrize("answer", ["http 500", "connection refused"])
def test_a_delivery_fails_after_its_last_attempt(
    url: str, receiver: tuple[Receiver, str], answer: str
) -> None:
    hook, hook_url = receiver
    hook.statuses = [500] * 10
    target = hook_url if answer == "http 500" else f"http://127.0.0.1:{closed_port()}/hook"

    async def scenario() -> list[WebhookDelivery]:
        async with open_sessions(url) as sessions:
            await add_events(sessions, target, ["task.created"])
            async with webhooks_running(url, max_attempts=3):
                return await eventually(lambda: settled_deliveries(sessions, 1), "given up")

    (row,) = run(scenario())
    assert (row.status, row.attempts, row.next_attempt_at, row.delivered_at) == (
        WebhookStatus.FAILED,
        3,
        None,
        None,
    )
    if answer == "http 500":
        assert row.last_status_code == 500 and row.last_error == "HTTP 500: try later"
        assert len(hook.requests) == 3
    else:
        assert row.last_status_code is None and "ConnectError" in (row.last_error or "")


def test_two_relays_and_deliverers_never_send_twice(url: str, receiver: tuple[Receiver, str]) -> None:
    """Two of each, on engines of their own (as two ``phonefleet pool`` processes), racing on 40 events."""
    hook, hook_url = receiver

    async def scenario() -> list[WebhookDelivery]:
        async with open_sessions(url) as sessions:
            for _ in range(4):
                await add_events(sessions, hook_url, ["task.step"] * 10)
            async with webhooks_running(url, concurrency=4), webhooks_running(url, concurrency=4):
                return await eventually(lambda: settled_deliveries(sessions, 40), "40 delivered")

    rows = run(scenario())
    assert all(r.status == WebhookStatus.DELIVERED and r.attempts == 1 for r in rows)
    assert len({r.event_id for r in rows}) == 40, "one delivery row per event"
    sent = [r.headers["x-phonefleet-delivery"] for r in hook.requests]
    assert len(sent) == 40 and len(set(sent)) == 40, "each delivery POSTed once"


def test_a_relay_that_starts_later_delivers_what_was_written_meanwhile(
    url: str, receiver: tuple[Receiver, str]
) -> None:
    _, hook_url = receiver

    async def scenario() -> list[WebhookDelivery]:
        async with open_sessions(url) as sessions:
            # Older than the relay's max_age (a day): turning webhooks on does not replay history.
            await add_events(sessions, hook_url, ["task.created"], created_at=utcnow() - dt.timedelta(days=2))
            _, recent = await add_events(sessions, hook_url, ["task.created", "task.status"])
            async with webhooks_running(url):  # no relay ran while they were written
                rows = await eventually(lambda: settled_deliveries(sessions, 2), "the two recent ones")
            assert [r.event_id for r in rows] == recent
            return rows

    assert len(run(scenario())) == 2


def test_the_relay_picks_up_an_event_that_committed_out_of_order(
    webhooks_pg_url: str, receiver: tuple[Receiver, str]
) -> None:
    _, hook_url = receiver

    async def scenario() -> tuple[list[int], int, int]:
        await truncate(webhooks_pg_url, "tasks, events, webhook_deliveries")
        async with open_sessions(webhooks_pg_url) as sessions:
            relay = WebhookRelay(Database(sessions), dialect="postgresql", event_types=["task.status"])
            await relay.relay()  # started: reads from "now"
            task_id, _ = await add_events(sessions, hook_url, [])
            async with sessions() as slow:
                await slow.begin()
                tenant = await slow.scalar(select(Task.tenant_id).where(Task.id == task_id))
                early = Event(
                    tenant_id=tenant, task_id=task_id, type="task.status", payload={}, created_at=utcnow()
                )
                slow.add(early)
                await slow.flush()  # id taken, not committed
                _, (late,) = await add_events(sessions, hook_url, ["task.status"])
                await relay.relay()
                await slow.commit()
            await relay.relay()
            return [r.event_id for r in await deliveries(sessions)], early.id, late

    got, early, late = run(scenario())
    assert early < late and sorted(got) == [early, late]


def test_the_delivery_log_is_paged_newest_first_and_tenant_scoped(api: Api) -> None:
    owner, stranger = api.caller(), api.caller()
    answer = owner.http.post(
        "/api/v1/tasks", json={"instruction": "x", "webhook_url": "https://hooks.example.com/pf"}
    )
    task_id = answer.json()["id"]

    async def add_rows() -> list[uuid.UUID]:
        async with open_sessions(api.db_url) as sessions, sessions() as session, session.begin():
            ids = []
            for i, type_ in enumerate(["task.status", "task.step", "task.status"]):
                event = Event(tenant_id=owner.tenant_id, task_id=uuid.UUID(task_id), type=type_, payload={},
                              created_at=utcnow())  # fmt: skip
                session.add(event)
                await session.flush()
                row = WebhookDelivery(event_id=event.id, task_id=event.task_id, url="https://hooks.example.com/pf",
                                      status=WebhookStatus.FAILED if i == 0 else WebhookStatus.PENDING,
                                      attempts=8 if i == 0 else 0, last_status_code=500 if i == 0 else None,
                                      last_error="HTTP 500" if i == 0 else None,
                                      created_at=utcnow() + dt.timedelta(milliseconds=i))  # fmt: skip
                session.add(row)
                await session.flush()
                ids.append(row.id)
            return ids

    ids = run(add_rows())
    path = f"/api/v1/tasks/{task_id}/webhook-deliveries"
    first = owner.http.get(path, params={"limit": 2}).json()
    assert [i["id"] for i in first["items"]] == [str(ids[2]), str(ids[1])]
    assert first["items"][1]["event_type"] == "task.step"
    rest = owner.http.get(path, params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert rest["next_cursor"] is None
    (oldest,) = rest["items"]
    assert (oldest["id"], oldest["status"], oldest["attempts"], oldest["last_status_code"]) == (
        str(ids[0]), "failed", 8, 500,
    )  # fmt: skip
    assert stranger.http.get(path).status_code == 404
    assert owner.http.get(f"/api/v1/tasks/{uuid.uuid4()}/webhook-deliveries").status_code == 404
    assert owner.http.get(path, params={"cursor": "bogus"}).json()["error"] == "invalid_cursor"


def test_a_webhook_url_that_is_not_http_is_refused_at_submission(api: Api) -> None:
    caller = api.caller()
    answer = caller.http.post("/api/v1/tasks", json={"instruction": "x", "webhook_url": "file:///etc/passwd"})
    assert answer.status_code == 422 and answer.json()["details"][0]["loc"][-1] == "webhook_url"


@pytest.mark.parametrize("secret", ["changethis", "", " Secret "])
def test_a_placeholder_webhook_secret_is_refused_outside_dev(secret: str) -> None:
    with pytest.raises(ValidationError, match=r"auth\.webhook_secret is a placeholder"):
        load_settings(env="prod", auth={"login_secret": "a-real-secret-7f3a9c", "webhook_secret": secret})


def test_webhook_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PHONEFLEET_WEBHOOKS__MAX_ATTEMPTS", "3")
    monkeypatch.setenv("PHONEFLEET_WEBHOOKS__BACKOFF_S", "[1, 2.5]")
    monkeypatch.setenv("PHONEFLEET_WEBHOOKS__EVENTS", '["task.status"]')
    webhooks = load_settings().webhooks
    assert (webhooks.max_attempts, webhooks.backoff_s, webhooks.events) == (3, [1.0, 2.5], ["task.status"])
    with pytest.raises(ValidationError):
        load_settings(webhooks={"backoff_s": [-1]})


def test_backoff_follows_the_schedule_with_jitter() -> None:
    schedule = [5.0, 30.0, 120.0]
    waits = {attempt: [retry_delay_s(schedule, attempt) for _ in range(50)] for attempt in (1, 2, 3, 7)}
    assert all(4.0 <= w <= 6.0 for w in waits[1]) and all(24.0 <= w <= 36.0 for w in waits[2])
    assert all(96.0 <= w <= 144.0 for w in waits[3] + waits[7]), "the last wait repeats"
    assert len(set(waits[1])) > 1, "jittered"


def test_phonefleet_pool_delivers_webhooks_and_stops_on_sigterm(
    tmp_path: Path, receiver: tuple[Receiver, str], adb_server: AdbServer
) -> None:
    """The deliverer runs inside ``phonefleet pool`` (so ``phonefleet up`` has it): a real process."""
    hook, hook_url = receiver
    db_url = _sqlite_url(tmp_path / "phonefleet.db")
    migrate_to_head(db_url)
    env = {
        **os.environ,
        "PHONEFLEET_DATABASE_URL": db_url,
        "PHONEFLEET_DATA_DIR": str(tmp_path / "data"),
        "PHONEFLEET_POOL__COUNT": "0",  # no phones needed to deliver webhooks
        "PHONEFLEET_POOL__MIN_IDLE": "0",
        "PHONEFLEET_AUTH__WEBHOOK_SECRET": SECRET.decode(),
        "PHONEFLEET_WEBHOOKS__POLL_S": "0.1",
    }
    log_path = tmp_path / "pool.log"
    command = [sys.executable, "-m", "orchestrator.cli", "pool", "--adb-port", str(adb_server.port)]
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(command, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT)
    try:

        async def add() -> list[int]:
            async with open_sessions(db_url) as sessions:
                return (await add_events(sessions, hook_url, ["task.created"]))[1]

        (event_id,) = run(add())

        def posted() -> bool:
            if proc.poll() is not None:
                raise GiveUp(f"phonefleet pool exited with {proc.returncode}:\n{log_path.read_text()}")
            return any(r.json["id"] == event_id for r in hook.requests)

        wait_until(posted, timeout=60, interval=0.1, what="phonefleet pool POSTs the event")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0, log_path.read_text()
    finally:
        stop_process(proc)
    assert len(hook.requests) == 1
