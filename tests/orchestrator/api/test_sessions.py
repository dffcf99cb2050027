"""Sessions over real HTTP: real PostgreSQL (and SQLite), Redis wake-ups, and virtual phones in a
running pool manager wherever the phone's reset matters.

Every test has a database of its own: a session leases *any* idle phone in it. Time passing (a
session nobody kept alive) is an ``expires_at`` moved into the past in the database; everything
after that — the sweep, the lazy expiry on read, the reaper, the reset — is the real code.
"""

from __future__ import annotations

import datetime as dt
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from sqlalchemy import select, update

from device_pool.driver import AdbDevice
from device_pool.pool import LeaseStore, RedisSignal
from orchestrator.db import (
    Device,
    DeviceSession,
    DeviceState,
    Event,
    Lease,
    make_engine,
    make_sessionmaker,
    utcnow,
)
from orchestrator.db.database import Database
from orchestrator.queue import TaskQueue
from orchestrator.services.sessions import LEASE_GRACE_S, SessionService
from orchestrator.services.sweeper import TaskSweeper
from tests.aio import run
from tests.conftest import REDIS_URL
from tests.databases import device_serial, migrate_to_head, open_sessions
from tests.orchestrator.api.conftest import Api, Caller, StartApi, StartPool
from tests.orchestrator.factories import make_device
from tests.processes import AdbServer


def when(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value.replace("Z", "+00:00"))


def create(caller: Caller, **body: Any) -> dict[str, Any]:
    r = caller.http.post("/api/v1/sessions", json=body)
    assert r.status_code == 201, r.text
    return r.json()


def set_expires(url: str, session_id: str, seconds_ago: float) -> None:
    """The session's ``expires_at`` ``seconds_ago`` in the past: nobody kept it alive."""

    async def write() -> None:
        async with open_sessions(url) as sessions, sessions.begin() as s:
            await s.execute(
                update(DeviceSession)
                .where(DeviceSession.id == uuid.UUID(session_id))
                .values(expires_at=utcnow() - dt.timedelta(seconds=seconds_ago))
            )

    run(write())


def leases_of(url: str, session_id: str) -> list[Lease]:
    async def read() -> list[Lease]:
        async with open_sessions(url) as sessions, sessions() as s:
            query = select(Lease).where(Lease.session_id == uuid.UUID(session_id))
            return list(await s.scalars(query.order_by(Lease.acquired_at)))

    return run(read())


def events_of(url: str, tenant_id: uuid.UUID) -> list[tuple[str, dict[str, Any]]]:
    async def read() -> list[tuple[str, dict[str, Any]]]:
        async with open_sessions(url) as sessions, sessions() as s:
            rows = await s.scalars(select(Event).where(Event.tenant_id == tenant_id).order_by(Event.id))
            return [(e.type, e.payload) for e in rows]

    return run(read())


def session_count(url: str) -> int:
    async def read() -> int:
        async with open_sessions(url) as sessions, sessions() as s:
            return len(list(await s.scalars(select(DeviceSession.id))))

    return run(read())


def add_devices(url: str, *profiles: dict[str, Any]) -> list[uuid.UUID]:
    """Idle device rows with no phone behind them: for tests where no reset matters."""

    async def insert() -> list[uuid.UUID]:
        async with open_sessions(url) as sessions, sessions.begin() as s:
            return [(await make_device(s, profile=profile)).id for profile in profiles]

    return run(insert())


async def _dirty(phone: AdbDevice) -> None:
    await phone.connect(timeout=30)
    await phone.push(b"the session user's secret", "/sdcard/Download/secret.txt")


async def _listing(phone: AdbDevice) -> str:
    await phone.connect(timeout=30)
    return (await phone.shell("ls /sdcard/Download")).stdout


def test_session_leases_a_phone_keepalive_extends_and_close_resets_it(
    own_api: Api, start_pool: StartPool, adb_server: AdbServer
) -> None:
    pool = start_pool(1)
    caller = own_api.caller()

    session = create(caller, ttl_s=60)
    sid, device_id = session["id"], session["device"]["id"]
    serial = device_serial(own_api.db_url, device_id)
    assert session["state"] == "active" and session["ttl_s"] == 60 and session["closed_at"] is None
    # A tenant reaches the phone's adb only through the tunnel; its address is the operator's to see.
    assert session["adb"] == {"tunnel": f"/api/v1/sessions/{sid}/adb", "command": f"phonefleet adb {sid}"}
    assert session["device"]["serial"] is None
    assert session["device"]["profile"]["width"] == 720
    assert pool.device(device_id).state == DeviceState.LEASED
    lease = caller.http.get(f"/api/v1/devices/{device_id}").json()["lease"]
    assert lease["session_id"] == sid and lease["holder"] == f"session:{sid}" and lease["task_id"] is None
    # The lease outlives the session by the grace: the reaper never takes a phone from a live session.
    [row] = leases_of(own_api.db_url, sid)
    expires = when(session["expires_at"])
    assert row.expires_at - expires == dt.timedelta(seconds=LEASE_GRACE_S)
    assert 60 <= (expires - when(session["created_at"])).total_seconds() < 70

    phone = AdbDevice(serial, adb_port=adb_server.port)
    run(_dirty(phone))  # the user leaves something behind
    assert "secret.txt" in run(_listing(phone))

    kept = caller.http.post(f"/api/v1/sessions/{sid}/keepalive")
    assert kept.status_code == 200, kept.text
    assert kept.json()["state"] == "active" and when(kept.json()["expires_at"]) > expires
    [row] = leases_of(own_api.db_url, sid)
    assert row.heartbeat_at is not None
    lease_margin = (row.expires_at - when(kept.json()["expires_at"])).total_seconds()
    assert LEASE_GRACE_S - 1 < lease_margin <= LEASE_GRACE_S

    closed = caller.http.delete(f"/api/v1/sessions/{sid}")
    assert closed.status_code == 200, closed.text
    assert closed.json()["state"] == "closed" and closed.json()["adb"] is None
    assert closed.json()["closed_at"] is not None
    # Released → resetting → the manager (woken through Redis; its timers are 600 s) resets it → idle.
    pool.wait_state(device_id, DeviceState.IDLE, timeout=30)
    assert "secret.txt" not in run(_listing(phone))
    [row] = leases_of(own_api.db_url, sid)
    assert row.released_at is not None and row.release_reason == "session_closed"

    again = caller.http.delete(f"/api/v1/sessions/{sid}")
    assert again.status_code == 200 and again.json()["state"] == "closed"
    late = caller.http.post(f"/api/v1/sessions/{sid}/keepalive")
    assert late.status_code == 409 and late.json()["error"] == "invalid_transition"
    assert "closed" in late.json()["message"]

    types = [t for t, _ in events_of(own_api.db_url, caller.tenant_id)]
    assert types == ["device.leased", "session.created", "device.released", "session.closed"]
    payloads = dict(events_of(own_api.db_url, caller.tenant_id))
    assert payloads["session.created"]["session_id"] == sid
    assert payloads["session.closed"] == {"session_id": sid, "device_id": device_id}


def test_sessions_nobody_keeps_alive_expire_and_their_phones_come_back(
    own_api: Api, start_pool: StartPool, redis_prefix: str
) -> None:
    pool = start_pool(2)
    caller = own_api.caller()
    read_later, swept = create(caller, ttl_s=30), create(caller, ttl_s=30)
    for session in (read_later, swept):
        set_expires(own_api.db_url, session["id"], seconds_ago=1)

    # The sweeper `phonefleet pool` runs: it expires the due sessions and releases their phones.
    async def sweep() -> list[uuid.UUID]:
        engine = make_engine(own_api.db_url)
        store = LeaseStore.for_engine(engine, signal=RedisSignal(REDIS_URL))
        queue = TaskQueue.from_settings(own_api.settings, key_prefix=redis_prefix)
        db = Database(make_sessionmaker(engine))
        try:
            sweeper = TaskSweeper(db, queue, stale_after_s=60, sessions=SessionService(db, store))
            return (await sweeper.sweep()).expired_sessions
        finally:
            queue.close()
            await store.close()
            await engine.dispose()

    expired = run(sweep())
    assert sorted(map(str, expired)) == sorted([read_later["id"], swept["id"]])
    for session in (read_later, swept):
        got = caller.http.get(f"/api/v1/sessions/{session['id']}").json()
        assert got["state"] == "expired" and got["adb"] is None and got["closed_at"] is not None
        pool.wait_state(session["device"]["id"], DeviceState.IDLE, timeout=30)
        [row] = leases_of(own_api.db_url, session["id"])
        assert row.release_reason == "session_expired"
    assert run(sweep()) == []  # nothing twice
    r = caller.http.post(f"/api/v1/sessions/{swept['id']}/keepalive")
    assert r.status_code == 409 and "expired" in r.json()["message"]
    expired_events = [p for t, p in events_of(own_api.db_url, caller.tenant_id) if t == "session.expired"]
    assert sorted(p["session_id"] for p in expired_events) == sorted([read_later["id"], swept["id"]])

    # Without a sweeper, a read expires a due session itself (and a keepalive in time keeps it).
    lazy, kept = create(caller, ttl_s=30), create(caller, ttl_s=30)
    assert caller.http.post(f"/api/v1/sessions/{kept['id']}/keepalive").status_code == 200
    set_expires(own_api.db_url, lazy["id"], seconds_ago=1)
    page = caller.http.get("/api/v1/sessions", params={"state": "active"}).json()
    assert [s["id"] for s in page["items"]] == [kept["id"]]
    assert caller.http.get(f"/api/v1/sessions/{lazy['id']}").json()["state"] == "expired"
    pool.wait_state(lazy["device"]["id"], DeviceState.IDLE, timeout=30)


def test_the_reaper_reclaims_a_phone_even_when_nobody_marks_the_session(
    own_api: Api, start_pool: StartPool
) -> None:
    pool = start_pool(1)
    caller = own_api.caller()
    session = create(caller, ttl_s=30)
    sid, device_id = session["id"], session["device"]["id"]
    # No sweeper ran and nobody read it: its lease ran out too (ttl + grace ago).
    set_expires(own_api.db_url, sid, seconds_ago=LEASE_GRACE_S + 5)

    async def lease_ran_out() -> None:
        async with open_sessions(own_api.db_url) as sessions, sessions.begin() as s:
            await s.execute(
                update(Device)
                .where(Device.id == uuid.UUID(device_id))
                .values(lease_expires_at=utcnow() - dt.timedelta(seconds=5))
            )

    run(lease_ran_out())
    # Step 1 of every manager pass (a pass another wake-up started may have got there first).
    pool.call(pool.store.reap_expired())
    pool.wait_state(device_id, DeviceState.IDLE, timeout=30)
    [row] = leases_of(own_api.db_url, sid)
    assert row.release_reason == "expired"
    # The session is marked when someone next looks; its phone is long gone, so nothing fails.
    got = caller.http.get(f"/api/v1/sessions/{sid}")
    assert got.status_code == 200 and got.json()["state"] == "expired"
    assert pool.device(device_id).state == DeviceState.IDLE


def test_no_free_phone_is_503_and_a_waiter_gets_the_next_one(own_api: Api, start_pool: StartPool) -> None:
    pool = start_pool(1)
    caller = own_api.caller()
    first = create(caller, ttl_s=60)

    busy = caller.http.post("/api/v1/sessions", json={"wait_s": 0.5})
    assert busy.status_code == 503, busy.text
    assert busy.json()["error"] == "no_device_available"
    assert int(busy.headers["Retry-After"]) >= 1
    assert session_count(own_api.db_url) == 1  # the refused request left no row behind
    page = caller.http.get("/api/v1/sessions").json()
    assert [s["id"] for s in page["items"]] == [first["id"]]

    waiter_http = own_api.client(caller.key)
    with ThreadPoolExecutor(1) as pool_thread:
        waiting = pool_thread.submit(waiter_http.post, "/api/v1/sessions", json={"wait_s": 45})
        closed = caller.http.delete(f"/api/v1/sessions/{first['id']}")
        assert closed.status_code == 200
        second = waiting.result(timeout=60)
    assert second.status_code == 201, second.text
    # The same phone, after its reset (a leased phone reaches idle only through a reset).
    assert second.json()["device"]["id"] == first["device"]["id"]
    assert pool.device(first["device"]["id"]).state == DeviceState.LEASED


def test_another_tenants_session_is_not_found(own_api: Api) -> None:
    [device_id] = add_devices(own_api.db_url, {"width": 1080, "height": 2400})
    owner, other = own_api.caller(), own_api.caller()
    session = create(owner, ttl_s=120)
    assert session["device"]["id"] == str(device_id)
    sid = session["id"]
    for method, path in [
        ("GET", f"/api/v1/sessions/{sid}"),
        ("POST", f"/api/v1/sessions/{sid}/keepalive"),
        ("DELETE", f"/api/v1/sessions/{sid}"),
        ("GET", f"/api/v1/sessions/{uuid.uuid4()}"),
    ]:
        r = other.http.request(method, path)
        assert r.status_code == 404 and r.json()["error"] == "session_not_found", (method, path, r.text)
    assert other.http.get("/api/v1/sessions").json()["items"] == []
    assert owner.http.get(f"/api/v1/sessions/{sid}").json()["state"] == "active"  # untouched
    assert [t for t, _ in events_of(own_api.db_url, other.tenant_id)] == []


@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_sessions_match_the_profile_and_list_in_pages(
    backend: str, start_api: StartApi, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("pg_url" if backend == "postgresql" else "sqlite_url")
    migrate_to_head(url)
    bank = {"width": 1080, "height": 2400, "android": "13", "apps": ["com.example.bank"]}
    plain = {"width": 1080, "height": 2400, "android": "13", "apps": []}
    api = start_api(url, pool={"profiles": {"banking": {"apps": ["com.example.bank"]}}})
    bank_id, *plain_ids = add_devices(url, bank, plain, plain)
    caller = api.caller()

    by_name = create(caller, device_profile="banking", wait_s=0)
    assert by_name["device"]["id"] == str(bank_id)
    none_left = caller.http.post(
        "/api/v1/sessions", json={"device_profile": {"apps": ["com.example.bank"]}, "wait_s": 0}
    )
    assert none_left.status_code == 503 and none_left.json()["error"] == "no_device_available"
    unknown = caller.http.post("/api/v1/sessions", json={"device_profile": "nosuch"})
    assert unknown.status_code == 422 and unknown.json()["error"] == "unknown_device_profile"
    others = [create(caller, device_profile={"android": "13"}, wait_s=0) for _ in plain_ids]
    assert sorted(s["device"]["id"] for s in others) == sorted(map(str, plain_ids))
    closed = caller.http.delete(f"/api/v1/sessions/{others[0]['id']}").json()
    assert closed["state"] == "closed"

    seen, cursor = [], None
    while True:
        params = {"limit": 2, **({"cursor": cursor} if cursor else {})}
        page = caller.http.get("/api/v1/sessions", params=params).json()
        seen += [s["id"] for s in page["items"]]
        if (cursor := page["next_cursor"]) is None:
            break
    assert seen == [others[1]["id"], others[0]["id"], by_name["id"]]  # newest first, each once
    active = caller.http.get("/api/v1/sessions", params={"state": "active"}).json()["items"]
    assert [s["id"] for s in active] == [others[1]["id"], by_name["id"]]
    assert [
        s["id"] for s in caller.http.get("/api/v1/sessions", params={"state": "closed"}).json()["items"]
    ] == [others[0]["id"]]


def test_bad_session_requests_answer_4xx(own_api: Api) -> None:
    caller = own_api.caller()
    bad: list[tuple[str, str, dict[str, Any]]] = [
        ("POST", "/api/v1/sessions", {"json": {"ttl_s": 29}}),
        ("POST", "/api/v1/sessions", {"json": {"ttl_s": 86401}}),
        ("POST", "/api/v1/sessions", {"json": {"ttl_s": "long"}}),
        ("POST", "/api/v1/sessions", {"json": {"wait_s": 61}}),
        ("POST", "/api/v1/sessions", {"json": {"wait_s": -1}}),
        ("POST", "/api/v1/sessions", {"json": {"device_profile": "has space"}}),
        ("POST", "/api/v1/sessions", {"json": {"device_profile": {"blob": "y" * 5000}}}),
        ("POST", "/api/v1/sessions", {"json": {"device_profile": {"k": "a\u0000b"}}}),
        ("POST", "/api/v1/sessions", {"json": {"device": "any"}}),
        (
            "POST",
            "/api/v1/sessions",
            {"content": b"{not json", "headers": {"Content-Type": "application/json"}},
        ),
        (
            "POST",
            "/api/v1/sessions",
            {"content": b'{"ttl_s": NaN}', "headers": {"Content-Type": "application/json"}},
        ),
        ("GET", "/api/v1/sessions", {"params": {"state": "bogus"}}),
        ("GET", "/api/v1/sessions", {"params": {"cursor": "!!!"}}),
        ("GET", "/api/v1/sessions", {"params": {"limit": 0}}),
        ("GET", "/api/v1/sessions/not-a-uuid", {}),
        ("POST", "/api/v1/sessions/not-a-uuid/keepalive", {}),
        ("DELETE", f"/api/v1/sessions/{uuid.uuid4()}", {}),
        ("PUT", "/api/v1/sessions", {"json": {}}),
    ]
    failures = []
    for method, path, kwargs in bad:
        r = caller.http.request(method, path, **kwargs)
        if not 400 <= r.status_code < 500 or not r.json().get("message"):
            failures.append((method, path, str(kwargs)[:60], r.status_code, r.text[:200]))
    assert not failures, "\n".join(map(str, failures))
    assert session_count(own_api.db_url) == 0  # nothing was created by any of them
    assert own_api.client().post("/api/v1/sessions", json={}).status_code == 401


def test_activity_keeps_a_session_alive_but_never_past_its_maximum_lifetime(start_api: StartApi, pg_url: str) -> None:
    """Idle counts from the last activity (a viewer's message or a device API call reaches
    ``SessionService.touch``), and ``sessions.max_lifetime_s`` bounds a session however active."""
    migrate_to_head(pg_url)
    api = start_api(pg_url, sessions={"max_lifetime_s": 120})
    add_devices(pg_url, {"android": 13})
    caller, stranger = api.caller(), api.caller()
    opened = create(caller, ttl_s=600)
    end_of_life = when(opened["created_at"]) + dt.timedelta(seconds=120)
    assert when(opened["expires_at"]) <= end_of_life, opened
    kept = caller.http.post(f"/api/v1/sessions/{opened['id']}/keepalive")
    assert kept.status_code == 200 and when(kept.json()["expires_at"]) == end_of_life, kept.text

    async def touched(tenant_id: uuid.UUID) -> dt.datetime:
        engine = make_engine(pg_url)
        store = LeaseStore.for_engine(engine)
        try:
            service = SessionService(Database(make_sessionmaker(engine)), store, max_lifetime_s=120)
            await service.touch(tenant_id, uuid.UUID(opened["id"]))
            async with open_sessions(pg_url) as sessions, sessions() as s:
                row = await s.get(DeviceSession, uuid.UUID(opened["id"]))
                assert row is not None and row.expires_at is not None
                return row.expires_at
        finally:
            await store.close()
            await engine.dispose()

    # Another tenant's activity does nothing; the session's own moves it to its end of life (not ttl_s on).
    set_expires(pg_url, opened["id"], seconds_ago=-5)  # 5 s left: it sat idle
    assert run(touched(stranger.tenant_id)) < utcnow() + dt.timedelta(seconds=10)
    assert run(touched(caller.tenant_id)) == end_of_life
