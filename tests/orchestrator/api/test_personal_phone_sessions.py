"""Sessions on personal phones, for real: the API over HTTP, a pool manager with two virtual phones
(their own processes, their data on disk), the real adb server and driver.

A person logs in to the Bank on personal phone P as they would through the live view (the driver's
taps and typing); P's data outlives the session, the device and its sleep; no other phone, pooled
or personal, and no other tenant ever gets it. Time passing (P unused for ``idle_stop_s``) is its
``last_used_at`` moved into the past; what follows — the manager's pass, the stop, the factory
reset of the device — is the real code.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from sqlalchemy import select, update

from device_pool.driver import AdbDevice
from orchestrator.db import Device, DeviceState, PersonalPhone, utcnow
from tests.aio import run
from tests.conditions import wait_until
from tests.databases import device_serial, open_sessions
from tests.orchestrator.api.conftest import Api, Caller, StartPool
from tests.orchestrator.api.pools import RunningPool
from tests.processes import AdbServer
from tests.ui import tap_node, wait_for_node

BANK_STATE = "/data/data/com.phonefleet.bank/files/state.json"


def make_phone(caller: Caller, name: str) -> str:
    made = caller.http.post("/api/v1/personal-phones", json={"name": name})
    assert made.status_code == 201, made.text
    return made.json()["id"]


def open_session(caller: Caller, **body: Any) -> dict[str, Any]:
    answer = caller.http.post("/api/v1/sessions", json={"wait_s": 30, **body})
    assert answer.status_code == 201, answer.text
    return answer.json()


def close(caller: Caller, session: dict[str, Any]) -> None:
    assert caller.http.delete(f"/api/v1/sessions/{session['id']}").status_code == 200


def phone_state(caller: Caller, phone_id: str) -> dict[str, Any]:
    answer = caller.http.get(f"/api/v1/personal-phones/{phone_id}")
    assert answer.status_code == 200, answer.text
    return answer.json()


def wait_phone(caller: Caller, phone_id: str, state: str) -> dict[str, Any]:
    return wait_until(
        lambda: (p := phone_state(caller, phone_id))["state"] == state and p,
        timeout=60, interval=0.05, what=f"personal phone {state}",
    )  # fmt: skip


def devices_on(url: str, phone_id: str) -> list[uuid.UUID]:
    """The devices running P's data now: never more than one."""

    async def read() -> list[uuid.UUID]:
        async with open_sessions(url) as sessions, sessions() as s:
            query = select(Device.id).where(Device.personal_phone_id == uuid.UUID(phone_id))
            return list(await s.scalars(query))

    return run(read())


def unused_since(url: str, phone_id: str, seconds_ago: float) -> None:
    async def write() -> None:
        async with open_sessions(url) as sessions, sessions.begin() as s:
            await s.execute(
                update(PersonalPhone)
                .where(PersonalPhone.id == uuid.UUID(phone_id))
                .values(last_used_at=utcnow() - dt.timedelta(seconds=seconds_ago))
            )

    run(write())


def signed_in(serial: str, adb_port: int) -> bool:
    """Whether the Bank on that phone keeps a login, read from the phone's own files."""

    async def read() -> bool:
        phone = AdbDevice(serial, adb_port=adb_port)
        await phone.connect(timeout=30)
        out = (await phone.shell(f"cat {BANK_STATE}")).stdout.strip()
        return bool(out) and out.startswith("{") and json.loads(out).get("signed_in") == "demo"

    return run(read())


def log_in_to_the_bank(serial: str, adb_port: int) -> str:
    """What a person does through the live view: open the Bank, type the login, tap Log in."""

    async def scenario() -> str:
        phone = AdbDevice(serial, adb_port=adb_port)
        await phone.connect(timeout=30)
        await phone.launch("Bank")
        await wait_for_node(phone, rid="username")
        await tap_node(phone, rid="username")
        await phone.type_text("demo")
        await tap_node(phone, rid="password")
        await phone.type_text("1234")
        await tap_node(phone, rid="login_button")
        return (await wait_for_node(phone, rid="balance")).text

    return run(scenario())


def opens_on_the_account(serial: str, adb_port: int) -> bool:
    async def scenario() -> bool:
        phone = AdbDevice(serial, adb_port=adb_port)
        await phone.connect(timeout=30)
        await phone.launch("Bank")
        await wait_for_node(phone, rid="balance")
        return True

    return run(scenario())


def test_what_a_person_does_on_a_personal_phone_is_kept_for_it_alone(
    own_api: Api, start_pool: StartPool, adb_server: AdbServer, tmp_path: Path
) -> None:
    pool: RunningPool = start_pool(2)
    adb, url = adb_server.port, own_api.db_url
    me = own_api.caller()
    p, q = make_phone(me, "P"), make_phone(me, "Q")

    first = open_session(me, personal_phone_id=p)
    assert first["personal_phone_id"] == p
    assert phone_state(me, p)["state"] == "in_use" and phone_state(me, p)["device_id"] == first["device"]["id"]
    assert phone_state(me, p)["wake_ms"] is not None
    serial_p = device_serial(url, first["device"]["id"])
    assert not signed_in(serial_p, adb)  # a new personal phone starts in factory state
    assert log_in_to_the_bank(serial_p, adb).startswith("$")
    close(me, first)
    ready = wait_phone(me, p, "ready")
    assert ready["device_id"] == first["device"]["id"] and ready["last_used_at"] is not None
    assert (tmp_path / "personal" / p).is_dir()  # its data lives apart from the phone's own

    # Again on P: the same data, still signed in; the Bank opens on the account.
    again = open_session(me, personal_phone_id=p)
    assert again["device"]["id"] == first["device"]["id"]  # ready: its device was kept
    assert signed_in(serial_p, adb) and opens_on_the_account(serial_p, adb)
    assert devices_on(url, p) == [uuid.UUID(first["device"]["id"])]
    close(me, again)
    wait_phone(me, p, "ready")

    # A pooled session never gets P's device (it is kept for P); the other phone is not signed in.
    pooled = open_session(me)
    assert pooled["device"]["id"] != first["device"]["id"] and pooled["personal_phone_id"] is None
    assert not signed_in(device_serial(url, pooled["device"]["id"]), adb)
    close(me, pooled)
    pool.wait_state(pooled["device"]["id"], DeviceState.IDLE)

    # Another personal phone Q wakes on the pooled phone, with its own (factory) data.
    on_q = open_session(me, personal_phone_id=q)
    assert on_q["device"]["id"] != first["device"]["id"]
    assert not signed_in(device_serial(url, on_q["device"]["id"]), adb)
    close(me, on_q)
    wait_phone(me, q, "ready")

    # Another tenant: P does not exist for it.
    stranger = own_api.caller()
    refused = stranger.http.post("/api/v1/sessions", json={"personal_phone_id": p, "wait_s": 0})
    assert refused.status_code == 404 and refused.json()["error"] == "personal_phone_not_found"
    colleague = own_api.caller(tenant_id=me.tenant_id)  # nor for another user of the tenant
    assert colleague.http.post("/api/v1/sessions", json={"personal_phone_id": p}).status_code == 404
    both = me.http.post("/api/v1/sessions", json={"personal_phone_id": p, "device_profile": {"android": "13"}})
    assert both.status_code == 422 and "exclusive" in both.json()["message"]

    # P and Q unused for idle_stop_s: their devices are stopped, reset, and serve the pool again.
    unused_since(url, p, 3600)
    unused_since(url, q, 3600)
    pool.call(pool.manager.reconcile())
    pool.call(pool.manager.reconcile())
    asleep = wait_phone(me, p, "asleep")
    assert asleep["device_id"] is None and wait_phone(me, q, "asleep")
    assert devices_on(url, p) == [] and devices_on(url, q) == []
    pool.all_idle()
    # Both phones pooled now: whichever ran P shows the factory state.
    held = [open_session(me), open_session(me)]
    assert {s["device"]["id"] for s in held} == {first["device"]["id"], on_q["device"]["id"]}
    for session in held:
        assert not signed_in(device_serial(url, session["device"]["id"]), adb)
        close(me, session)
    pool.all_idle()

    # P wakes again (on whichever phone is free) with its data: still signed in.
    woken = open_session(me, personal_phone_id=p)
    assert signed_in(device_serial(url, woken["device"]["id"]), adb)
    close(me, woken)
    wait_phone(me, p, "ready")

    # Deleting P removes its data once its device is stopped.
    assert me.http.delete(f"/api/v1/personal-phones/{p}", params={"confirm": "P"}).status_code == 200
    pool.call(pool.manager.reconcile())
    pool.call(pool.manager.reconcile())
    wait_until(lambda: not (tmp_path / "personal" / p).exists(), timeout=30, what="P's data removed")
    assert devices_on(url, p) == []
    assert (tmp_path / "personal" / q).is_dir()  # Q's data is untouched


def test_one_holder_at_a_time_the_second_waits_then_gets_the_same_data(
    own_api: Api, start_pool: StartPool, adb_server: AdbServer
) -> None:
    start_pool(2)
    me = own_api.caller()
    p = make_phone(me, "P")
    first = open_session(me, personal_phone_id=p)
    log_in_to_the_bank(device_serial(own_api.db_url, first["device"]["id"]), adb_server.port)

    busy = me.http.post("/api/v1/sessions", json={"personal_phone_id": p, "wait_s": 0.5})
    assert busy.status_code == 503 and busy.json()["error"] == "personal_phone_busy"
    assert "Retry-After" in busy.headers
    # A phone in use is not deleted under its holder.
    in_use = me.http.delete(f"/api/v1/personal-phones/{p}", params={"confirm": "P"})
    assert in_use.status_code == 409 and in_use.json()["error"] == "personal_phone_in_use"

    with ThreadPoolExecutor(1) as executor:
        second = executor.submit(
            lambda: me.http.post("/api/v1/sessions", json={"personal_phone_id": p, "wait_s": 60})
        )
        wait_until(lambda: phone_state(me, p)["state"] == "in_use", timeout=10, what="P held")
        assert not second.done()  # it waits for P, though the other phone is idle
        assert devices_on(own_api.db_url, p) == [uuid.UUID(first["device"]["id"])]
        close(me, first)
        answer = second.result(timeout=60)
    assert answer.status_code == 201, answer.text
    assert answer.json()["device"]["id"] == first["device"]["id"]
    assert signed_in(device_serial(own_api.db_url, answer.json()["device"]["id"]), adb_server.port)
    assert devices_on(own_api.db_url, p) == [uuid.UUID(first["device"]["id"])]
    close(me, answer.json())
