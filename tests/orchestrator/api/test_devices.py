"""Devices over real HTTP: shared state for everyone, lease details only for the lease's tenant, serials
for the operator only; the operator's routes (register a static phone, drain, undrain, retire), with
real phones where the pool must act."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from device_pool.pool import LeaseStore
from device_pool.providers.registered import RegisteredAdbProvider
from orchestrator.db import DeviceState, Lease, Tenant, UserRole, make_engine
from tests.aio import run
from tests.databases import migrate_to_head, open_sessions
from tests.orchestrator.api.conftest import Api, StartApi
from tests.orchestrator.api.pools import running_pool
from tests.orchestrator.factories import in_seconds, make_device, make_task
from tests.processes import AdbServer, start_sim


def leased_device(db_url: str, tenant_id: uuid.UUID) -> tuple[uuid.UUID, uuid.UUID]:
    """A device leased to a task of ``tenant_id``: (device id, task id)."""

    async def insert() -> tuple[uuid.UUID, uuid.UUID]:
        async with open_sessions(db_url) as sessions, sessions() as session, session.begin():
            tenant = await session.get_one(Tenant, tenant_id)
            task = await make_task(session, tenant)
            device = await make_device(session, state=DeviceState.LEASED)
            lease = Lease(device_id=device.id, tenant_id=tenant_id, holder="worker-1", task_id=task.id,
                          expires_at=in_seconds(60))  # fmt: skip
            session.add(lease)
            await session.flush()
            device.lease_id, device.lease_holder, device.lease_expires_at = (
                lease.id,
                "worker-1",
                lease.expires_at,
            )
            return device.id, task.id

    return run(insert())


def idle_device(db_url: str) -> uuid.UUID:
    async def insert() -> uuid.UUID:
        async with open_sessions(db_url) as sessions, sessions() as session, session.begin():
            return (await make_device(session, labels={"rack": "a1"})).id

    return run(insert())


def all_devices(http: Any, **params: Any) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    cursor = None
    while True:
        page = http.get(
            "/api/v1/devices", params={"limit": 2, **params, **({"cursor": cursor} if cursor else {})}
        )
        assert page.status_code == 200, page.text
        found.update({d["id"]: d for d in page.json()["items"]})
        if (cursor := page.json()["next_cursor"]) is None:
            return found


def test_devices_are_listed_with_lease_details_only_for_their_tenant(api: Api) -> None:
    owner, other = api.caller(), api.caller()
    device_id, task_id = leased_device(api.db_url, owner.tenant_id)
    idle_id = idle_device(api.db_url)

    mine = all_devices(owner.http)[str(device_id)]
    assert mine["state"] == "leased" and mine["lease"]["task_id"] == str(task_id)
    assert mine["lease"]["holder"] == "worker-1" and mine["serial"] is None  # members see no ADB address

    theirs = all_devices(other.http)
    assert theirs[str(device_id)]["state"] == "leased" and theirs[str(device_id)]["lease"] is None
    assert theirs[str(idle_id)]["labels"] == {"rack": "a1"}
    assert str(device_id) not in all_devices(other.http, state="idle")

    single = other.http.get(f"/api/v1/devices/{device_id}")
    assert single.status_code == 200 and single.json()["lease"] is None
    assert owner.http.get(f"/api/v1/devices/{device_id}").json()["lease"]["task_id"] == str(task_id)


def test_the_operator_sees_the_serial_and_unknown_devices_are_404(api: Api) -> None:
    admin = api.caller(role=UserRole.OPERATOR)
    device_id = idle_device(api.db_url)
    r = admin.http.get(f"/api/v1/devices/{device_id}")
    assert r.status_code == 200 and r.json()["serial"].endswith(":5555")
    tenant_admin = api.caller(role=UserRole.ADMIN)  # a tenant's admin is not the fleet's operator
    assert tenant_admin.http.get(f"/api/v1/devices/{device_id}").json()["serial"] is None
    assert all(d["serial"] is None for d in all_devices(tenant_admin.http).values())
    r = admin.http.get(f"/api/v1/devices/{uuid.uuid4()}")
    assert r.status_code == 404 and r.json()["error"] == "device_not_found"


def test_a_quarantined_phone_shows_since_when_and_admins_see_why(api: Api) -> None:
    admin, member = api.caller(role=UserRole.OPERATOR), api.caller()
    reason = "health check failed: no answer within 5 s (3 failures in a row)"

    async def insert() -> uuid.UUID:
        async with open_sessions(api.db_url) as sessions, sessions() as session, session.begin():
            device = await make_device(
                session, state=DeviceState.UNHEALTHY, last_error=reason,
                quarantined_at=in_seconds(-5), quarantine_reason=reason,
            )  # fmt: skip
            return device.id

    device_id = run(insert())
    seen = admin.http.get(f"/api/v1/devices/{device_id}").json()
    assert seen["state"] == "unhealthy" and seen["quarantined_at"] is not None
    assert seen["quarantine_reason"] == reason
    theirs = all_devices(member.http, state="unhealthy")[str(device_id)]
    assert theirs["quarantined_at"] == seen["quarantined_at"] and theirs["quarantine_reason"] is None
    assert admin.http.get(f"/api/v1/devices/{idle_device(api.db_url)}").json()["quarantined_at"] is None


# --- the operator's routes: register, drain, undrain, retire ---------------------------------------------

ADMIN_ROUTES = ("drain", "undrain", "retire")


def register_body(serial: str | None = None, **fields: Any) -> dict[str, Any]:
    return {"serial": serial or f"phone-{uuid.uuid4().hex[:10]}:5555", **fields}


def test_fleet_routes_need_the_operator(api: Api) -> None:
    member, tenant_admin = api.caller(), api.caller(role=UserRole.ADMIN)
    admin = api.caller(role=UserRole.OPERATOR)
    device_id = idle_device(api.db_url)
    refused = []
    for caller in (member, tenant_admin):
        refused += [caller.http.post("/api/v1/devices", json=register_body())]
        refused += [caller.http.post(f"/api/v1/devices/{device_id}/{route}") for route in ADMIN_ROUTES]
    for r in refused:
        assert r.status_code == 403, r.text
        assert r.json()["error"] == "permission_denied" and "operator" in r.json()["message"]
    assert member.http.get(f"/api/v1/devices/{device_id}").json()["labels"] == {"rack": "a1"}  # unchanged
    for route in ADMIN_ROUTES:
        r = admin.http.post(f"/api/v1/devices/{uuid.uuid4()}/{route}")
        assert r.status_code == 404 and r.json()["error"] == "device_not_found", (route, r.text)


def test_register_a_static_phone(api: Api) -> None:
    admin, member = api.caller(role=UserRole.OPERATOR), api.caller()
    profile = {"width": 720, "height": 1600, "density": 320, "android": "14", "apps": ["com.example.bank"]}
    body = register_body(profile=profile, labels={"rack": "b2", "owner": "qa"})
    r = admin.http.post("/api/v1/devices", json=body)
    assert r.status_code == 201, r.text
    device = r.json()
    assert (device["provider"], device["state"], device["serial"]) == (
        "static",
        "provisioning",
        body["serial"],
    )
    assert device["profile"] == profile and device["labels"] == {"rack": "b2", "owner": "qa"}
    seen = member.http.get(f"/api/v1/devices/{device['id']}").json()
    assert seen["state"] == "provisioning" and seen["serial"] is None  # members see no ADB address

    again = admin.http.post("/api/v1/devices", json=register_body(body["serial"]))
    assert again.status_code == 409 and again.json()["error"] == "device_exists"
    assert device["id"] in again.json()["message"]
    usb = admin.http.post("/api/v1/devices", json=register_body(f"R58M{uuid.uuid4().hex[:8]}"))
    assert usb.status_code == 201 and usb.json()["profile"]["width"] == 1080  # the default profile

    for bad in [
        {"serial": "has space:5555"},
        {"serial": ""},
        {"serial": "host:0"},
        {"serial": ":5555"},
        {"serial": "x" * 300},
        register_body(labels={"drain": "yes"}),
        register_body(labels={"k": "v\u0000"}),
        register_body(labels={"k": 1}),
        register_body(profile={"width": 0}),
        register_body(profile={"screen": "big"}),
        register_body(provider="sim"),
    ]:
        r = admin.http.post("/api/v1/devices", json=bad)
        assert r.status_code == 422 and r.json()["error"] == "validation_error", (bad, r.text)
    lone_surrogate = b'{"serial": "p:5555", "profile": {"android": "\\ud800"}}'
    r = admin.http.post("/api/v1/devices", content=lone_surrogate, headers={"Content-Type": "application/json"})
    assert r.status_code == 422, r.text


@pytest.fixture
def own_db_api(start_api: StartApi, empty_db_url: str) -> Api:
    """The API on a migrated database of this test's own (PostgreSQL, then SQLite): leases take any idle phone."""
    migrate_to_head(empty_db_url)
    return start_api(empty_db_url)


def test_drain_takes_a_phone_out_after_its_lease_and_undrain_brings_it_back(own_db_api: Api) -> None:
    api = own_db_api
    admin = api.caller(role=UserRole.OPERATOR)
    device_id = idle_device(api.db_url)

    async def pool(call: Any) -> Any:
        # The pool's side, as a worker's or the manager's LeaseStore sees it.
        engine = make_engine(api.db_url)
        store = LeaseStore.for_engine(engine)
        try:
            return await call(store)
        finally:
            await store.close()
            await engine.dispose()

    def lease() -> Any:
        return run(pool(lambda store: store.acquire(holder="worker-1", tenant_id=None, ttl_s=60)))

    r = admin.http.post(f"/api/v1/devices/{device_id}/drain")
    assert r.status_code == 200 and r.json()["labels"] == {"rack": "a1", "drain": True}
    assert r.json()["state"] == "idle" and lease() is None  # idle, but never handed out
    r = admin.http.post(f"/api/v1/devices/{device_id}/undrain")
    assert r.status_code == 200 and r.json()["labels"] == {"rack": "a1"}
    grant = lease()
    assert grant is not None and grant.device_id == device_id

    # Drained while leased: the holder keeps it to the end of its lease...
    r = admin.http.post(f"/api/v1/devices/{device_id}/drain")
    assert r.status_code == 200 and r.json()["state"] == "leased" and r.json()["labels"]["drain"] is True
    assert run(pool(lambda store: store.heartbeat(grant.lease_id, "worker-1", 60)))
    assert run(pool(lambda store: store.release(grant.lease_id, "worker-1")))
    # ...is reset as usual (the manager's mark_idle after its reset), and then stays out.
    assert run(pool(lambda store: store.mark_idle(device_id)))
    assert lease() is None
    assert admin.http.get(f"/api/v1/devices/{device_id}").json()["state"] == "idle"
    # Draining twice changes nothing; a sim phone cannot be retired (its provider would bring it back).
    assert admin.http.post(f"/api/v1/devices/{device_id}/drain").json()["labels"] == {
        "rack": "a1",
        "drain": True,
    }
    r = admin.http.post(f"/api/v1/devices/{device_id}/retire")
    assert (
        r.status_code == 409 and r.json()["error"] == "invalid_transition" and "'sim'" in r.json()["message"]
    )


def test_a_registered_phone_is_checked_into_the_pool_leased_and_retired(
    start_api: StartApi, pg_url: str, tmp_path: Path, adb_server: AdbServer
) -> None:
    migrate_to_head(pg_url)
    api = start_api(pg_url)
    admin, member = api.caller(role=UserRole.OPERATOR), api.caller()
    phones = start_sim(tmp_path, count=2)  # 1080x2400
    try:
        good = admin.http.post("/api/v1/devices", json=register_body(phones.serial(0))).json()
        wrong_size = {"width": 720, "height": 1600}
        bad = admin.http.post(
            "/api/v1/devices", json=register_body(phones.serial(1), profile=wrong_size)
        ).json()
        provider = lambda store: RegisteredAdbProvider(store, adb_port=adb_server.port)  # noqa: E731
        # As `phonefleet pool` runs registered phones: never "replaced" (the fleet cannot make one),
        # so the unhealthy one stays listed however many of its checks fail while the test runs.
        with running_pool(pg_url, provider, settle=False, recreate_unhealthy=False) as pool:
            # The manager's first pass: adb connect, HOME, the health probe → idle, or unhealthy and why.
            pool.wait_state(good["id"], DeviceState.IDLE, timeout=60)
            unhealthy = pool.wait_state(bad["id"], DeviceState.UNHEALTHY, timeout=60)
            assert "screen is 1080x2400, profile says 720x1600" in (unhealthy.last_error or "")
            checked = admin.http.get(f"/api/v1/devices/{good['id']}").json()
            assert checked["state"] == "idle" and checked["health_checked_at"] is not None

            session = member.http.post("/api/v1/sessions", json={"wait_s": 5})
            assert session.status_code == 201, session.text
            assert session.json()["device"]["id"] == good["id"]
            assert session.json()["device"]["serial"] is None  # the member reaches it by the tunnel
            assert admin.http.get(f"/api/v1/devices/{good['id']}").json()["serial"] == phones.serial(0)
            busy = admin.http.post(f"/api/v1/devices/{good['id']}/retire")
            assert busy.status_code == 409 and "leased" in busy.json()["message"]

            member.http.delete(f"/api/v1/sessions/{session.json()['id']}")
            pool.wait_state(good["id"], DeviceState.IDLE, timeout=30)  # reset (HOME) by its manager
            retired = admin.http.post(f"/api/v1/devices/{good['id']}/retire")
            assert retired.status_code == 200 and retired.json()["state"] == "retired"
            assert admin.http.post(f"/api/v1/devices/{good['id']}/retire").json()["state"] == "retired"
            pool.call(pool.manager.reconcile())  # a whole pass does not bring it back
            assert pool.device(good["id"]).state == DeviceState.RETIRED
            assert [s.serial for s in pool.call(pool.manager.provider.list())] == [phones.serial(1)]

        # A retired serial may be registered again.
        back = admin.http.post("/api/v1/devices", json=register_body(phones.serial(0)))
        assert (
            back.status_code == 201
            and back.json()["id"] == good["id"]
            and back.json()["state"] == "provisioning"
        )
    finally:
        phones.stop()
