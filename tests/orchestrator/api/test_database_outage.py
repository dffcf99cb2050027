"""The API while its PostgreSQL is stopped, and after it is started again (issue 13 §4).

A PostgreSQL cluster of this module's own (``tests/postgres_servers.py``) is stopped for real under
a running API (uvicorn, ``create_app``): every route that needs the database answers 503
``database_unavailable`` with ``Retry-After`` — never a 500, never a hang — ``/readyz`` says the
database is unreachable while ``/healthz`` stays 200, and once PostgreSQL is back the same API
process answers 200 again: its connection pool replaces the connections the restart killed.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from dataclasses import dataclass

import asyncpg
import httpx
import pytest
import redis
from sqlalchemy import text
from websockets.exceptions import ConnectionClosed
from websockets.sync.client import connect

from orchestrator.api import create_app
from orchestrator.db import UserRole, make_engine, make_sessionmaker
from orchestrator.db.database import Database
from orchestrator.db.engine import CONNECT_TIMEOUT_S
from orchestrator.errors import DatabaseUnavailable
from orchestrator.queue import TaskQueue
from orchestrator.settings import Settings
from tests.aio import run, until
from tests.asgi import bound_socket, serve_asgi
from tests.conditions import wait_until
from tests.conftest import REDIS_URL
from tests.databases import migrate_to_head
from tests.orchestrator.api.conftest import Api, Caller, StartApi
from tests.postgres_servers import PrivatePostgres, StopMode, private_postgres

# The client's deadline for one answer: "a few seconds" (the issue), far above a refused connect.
ANSWER_WITHIN_S = 10.0


@dataclass
class Outage:
    """The API on a private cluster, with callers and rows made while it was up."""

    pg: PrivatePostgres
    api: Api
    member: Caller
    admin: Caller
    task_id: str

    def down(self, mode: StopMode = "fast") -> None:
        self.pg.stop(mode)

    def up(self) -> None:
        if not self.pg.running():
            self.pg.start()


@pytest.fixture(scope="module")
def outage(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Outage]:
    workdir = tmp_path_factory.mktemp("pg-outage")
    prefix = f"pftest:{uuid.uuid4().hex[:12]}:"
    with private_postgres(workdir) as pg, ExitStack() as stack:
        migrate_to_head(pg.url)
        settings = Settings(data_dir=workdir / "data", database_url=pg.url, redis_url=REDIS_URL)
        queue = TaskQueue.from_settings(settings, key_prefix=prefix)
        stack.callback(queue.close)
        url = stack.enter_context(serve_asgi(create_app(settings, queue=queue), lifespan="on"))
        api = Api(url=url, settings=settings, redis_prefix=prefix, _stack=stack)
        member, admin = api.caller(), api.caller(role=UserRole.ADMIN)
        for caller in (member, admin):
            caller.http.timeout = httpx.Timeout(ANSWER_WITHIN_S)
        r = member.http.post("/api/v1/tasks", json={"instruction": "before the outage"})
        assert r.status_code == 202, r.text
        try:
            yield Outage(pg, api, member, admin, r.json()["id"])
        finally:
            client = redis.Redis.from_url(REDIS_URL)
            keys = list(client.scan_iter(match=f"{prefix}*"))
            if keys:
                client.delete(*keys)
            client.close()


@pytest.fixture
def down(outage: Outage) -> Iterator[Outage]:
    """PostgreSQL stopped for the test, started again afterwards (whatever the test did)."""
    outage.down()
    try:
        yield outage
    finally:
        outage.up()


def _chunked(body: bytes) -> Iterator[bytes]:
    # No Content-Length: the submission fast path hands the request to the route (api/submission.py).
    yield body


Call = Callable[[Outage], httpx.Response]

# What integrators, the dashboard and admins call, each needing the database.
ROUTES: dict[str, Call] = {
    "submit (fast path)": lambda o: o.member.http.post("/api/v1/tasks", json={"instruction": "x"}),
    "submit (route)": lambda o: o.member.http.post(
        "/api/v1/tasks",
        content=_chunked(b'{"instruction": "x"}'),
        headers={"Content-Type": "application/json"},
    ),
    "submit (unknown key)": lambda o: httpx.post(
        f"{o.api.url}/api/v1/tasks",
        json={"instruction": "x"},
        timeout=ANSWER_WITHIN_S,
        headers={"Authorization": f"Bearer pf_{uuid.uuid4().hex[:8]}_{'s' * 43}"},
    ),
    "task": lambda o: o.member.http.get(f"/api/v1/tasks/{o.task_id}"),
    "tasks": lambda o: o.member.http.get("/api/v1/tasks"),
    "steps": lambda o: o.member.http.get(f"/api/v1/tasks/{o.task_id}/steps"),
    "cancel": lambda o: o.member.http.post(f"/api/v1/tasks/{o.task_id}/cancel"),
    "webhook deliveries": lambda o: o.member.http.get(f"/api/v1/tasks/{o.task_id}/webhook-deliveries"),
    "devices": lambda o: o.member.http.get("/api/v1/devices"),
    "register device": lambda o: o.admin.http.post(
        "/api/v1/devices", json={"serial": f"phone-{uuid.uuid4().hex[:10]}:5555"}
    ),
    "open session": lambda o: o.member.http.post("/api/v1/sessions", json={}),
    "sessions": lambda o: o.member.http.get("/api/v1/sessions"),
    "login": lambda o: httpx.post(
        f"{o.api.url}/api/v1/auth/login", json={"api_key": o.member.key}, timeout=ANSWER_WITHIN_S
    ),
    "me": lambda o: o.member.http.get("/api/v1/auth/me"),
    "api keys": lambda o: o.admin.http.get("/api/v1/api-keys"),
    "issue api key": lambda o: o.admin.http.post("/api/v1/api-keys", json={"user": "outage-bot"}),
    "metrics": lambda o: o.admin.http.get("/metrics"),
}


def _unavailable(response: httpx.Response) -> None:
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) >= 1, response.headers
    body = response.json()
    assert body["error"] == "database_unavailable" and body["message"], body


@pytest.mark.parametrize("route", ROUTES)
def test_a_route_that_needs_the_database_answers_503_with_retry_after(down: Outage, route: str) -> None:
    started = time.monotonic()
    response = ROUTES[route](down)
    _unavailable(response)
    print(f"\n{route}: 503 in {time.monotonic() - started:.3f} s")


def test_the_events_socket_closes_4503(down: Outage) -> None:
    url = down.api.url.replace("http://", "ws://", 1) + "/api/v1/events"
    headers = {"Authorization": f"Bearer {down.member.key}"}
    with (
        connect(url, additional_headers=headers, open_timeout=ANSWER_WITHIN_S, close_timeout=2) as ws,
        pytest.raises(ConnectionClosed) as closed,
    ):
        ws.recv(timeout=ANSWER_WITHIN_S)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 4503, closed.value


def test_readyz_says_the_database_is_unreachable_and_healthz_stays_200(down: Outage) -> None:
    http = down.member.http
    assert http.get("/healthz").json() == {"status": "ok"}
    r = http.get("/readyz")
    assert r.status_code == 503, r.text
    checks = r.json()["checks"]
    assert checks["broker"] == "ok", checks
    assert checks["database"].startswith("database unavailable"), checks
    assert r.json()["status"] == "unavailable"


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_the_same_api_answers_200_once_postgres_is_back(outage: Outage, mode: StopMode) -> None:
    http = outage.member.http
    # Every pooled connection has been used, so each one is killed by the restart.
    assert http.get(f"/api/v1/tasks/{outage.task_id}").status_code == 200
    outage.down(mode)
    try:
        _unavailable(http.get(f"/api/v1/tasks/{outage.task_id}"))
        assert http.get("/readyz").status_code == 503
    finally:
        outage.pg.start()
    back = time.monotonic()

    def answered() -> httpx.Response | None:
        r = http.get(f"/api/v1/tasks/{outage.task_id}")
        assert r.status_code in (200, 503), r.text
        return r if r.status_code == 200 else None

    wait_until(answered, timeout=30, interval=0.05, what="the API answering 200 again")
    recovered_s = time.monotonic() - back
    # And from then on, every route and the readiness probe (no request pays for a stale connection).
    assert http.get("/readyz").status_code == 200
    r = http.post("/api/v1/tasks", json={"instruction": "after the outage"})
    assert r.status_code == 202, r.text
    for route in ("task", "tasks", "devices", "sessions", "me"):
        r = ROUTES[route](outage)
        assert r.status_code == 200, (route, r.text)
    assert outage.admin.http.get("/api/v1/api-keys").status_code == 200
    print(f"\nPostgreSQL back ({mode} stop) → the API answered 200 after {recovered_s:.3f} s")


def test_a_server_refusing_new_connections_is_unavailable_too(outage: Outage) -> None:
    """PostgreSQL shutting down, starting up or in crash recovery refuses a new connection with
    SQLSTATE 57P03, which asyncpg raises as a plain server error, not a connection error. Here a
    smart shutdown waits on a client (and on the API's pooled connections, which keep working)."""
    pg = outage.pg

    async def scenario() -> str:
        held = await asyncpg.connect(pg.dsn)
        engine = make_engine(pg.url)
        try:
            await asyncio.to_thread(pg.stop, "smart", wait=False)

            async def connect_once() -> bool:
                try:
                    await (await asyncpg.connect(pg.dsn)).close()
                except asyncpg.CannotConnectNowError:
                    return True
                return False

            def refused() -> bool:  # polled on a thread of its own (tests.aio.until)
                return asyncio.run(connect_once())

            await until(refused, what="new connections refused: shutting down")
            with pytest.raises(DatabaseUnavailable) as raised:
                async with Database(make_sessionmaker(engine)).transaction() as db_session:
                    await db_session.execute(text("select 1"))
            return raised.value.message
        finally:
            await engine.dispose()
            await held.close()

    try:
        message = run(scenario())
    finally:
        pg.stop("fast")  # the API's idle pooled connections would hold a smart shutdown forever
        pg.start()
    assert "shutting down" in message, message


def test_a_database_host_that_never_answers_is_503_within_the_connect_timeout(start_api: StartApi) -> None:
    """A server that takes the TCP connection but never speaks (a paused VM, a dropped route): each
    new connection gives up after ``CONNECT_TIMEOUT_S``, not the driver's default 60 s."""
    with bound_socket() as mute:
        mute.listen(64)  # the kernel completes each handshake; nobody ever reads or answers
        api = start_api(f"postgresql+asyncpg://postgres@127.0.0.1:{mute.getsockname()[1]}/none")
        caller_key = f"pf_{uuid.uuid4().hex[:8]}_{'s' * 43}"  # looked up in the database: a new connection
        http = api.client(caller_key)
        http.timeout = httpx.Timeout(ANSWER_WITHIN_S)
        started = time.monotonic()
        _unavailable(http.get("/api/v1/tasks"))
        took = time.monotonic() - started
        assert http.get("/readyz").status_code == 503
    print(f"\nmute database host: 503 after {took:.1f} s (connect timeout {CONNECT_TIMEOUT_S:g} s)")


@pytest.mark.parametrize("mode", ["fast", "immediate"])
def test_a_statement_in_flight_when_postgres_stops_is_unavailable_too(outage: Outage, mode: StopMode) -> None:
    """A request whose statement runs at the moment of the stop: a fast shutdown ends its session
    with SQLSTATE 57P01, a crash drops its socket; either is a 503, not a 500."""
    pg = outage.pg

    def sleeping() -> bool:  # polled on a thread of its own (tests.aio.until)
        async def look() -> bool:
            conn = await asyncpg.connect(pg.dsn)
            try:
                query = "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'select pg_sleep%'"
                return bool(await conn.fetchval(query))
            finally:
                await conn.close()

        return asyncio.run(look())

    async def scenario() -> str:
        engine = make_engine(pg.url)
        try:
            db = Database(make_sessionmaker(engine))

            async def in_flight() -> None:
                async with db.transaction() as db_session:
                    await db_session.execute(text("select pg_sleep(60)"))

            job = asyncio.create_task(in_flight())
            await until(sleeping, what="the statement running")
            await asyncio.to_thread(pg.stop, mode)
            with pytest.raises(DatabaseUnavailable) as raised:
                await job
            return raised.value.message
        finally:
            await engine.dispose()

    try:
        message = run(scenario())
    finally:
        outage.up()
    print(f"\nin flight at a {mode} stop: {message}")
