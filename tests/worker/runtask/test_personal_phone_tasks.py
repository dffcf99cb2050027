"""Tasks on personal phones, end to end: the API over HTTP, a ``phonefleet worker`` process, the
reference model, and a pool of two virtual phones that keeps personal phones' data.

A person logs in to the Bank on personal phone P in a session (through the driver, as through the
live view). Then a task on P finds the Bank signed in and needs nobody; a task on no personal
phone, and one on another personal phone Q, find the login screen and ask a person. Each is
checked from the phone's own files. Two holders of P at once: the second waits
(``personal_phone_busy``) and then runs on the same device and data; P is never on two devices.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from sqlalchemy import select, update

from device_pool.driver import AdbDevice
from device_pool.providers import SimProvider
from orchestrator.db import Device, Lease, PersonalPhone, utcnow
from tests.aio import run
from tests.conditions import wait_until
from tests.databases import open_sessions
from tests.processes import ReferenceModel
from tests.ui import tap_node, wait_for_node
from tests.worker.runtask.conftest import Api, Pool, StartWorker

LOGIN = "Open Bank and log in"
BANK_STATE = "/data/data/com.phonefleet.bank/files/state.json"


def phone(api: Api, name: str) -> str:
    made = api.http.post("/api/v1/personal-phones", json={"name": name})
    assert made.status_code == 201, made.text
    return made.json()["id"]


def personal(api: Api, phone_id: str) -> dict[str, Any]:
    return api.http.get(f"/api/v1/personal-phones/{phone_id}").json()


def adb_port(pool: Pool) -> int:
    provider = pool.manager.provider
    assert isinstance(provider, SimProvider)
    return provider.config.adb_port


def serial_of(pool: Pool, device_id: str) -> str:
    return next(d.serial for d in pool.devices() if str(d.id) == device_id)


def signed_in(pool: Pool, device_id: str) -> bool:
    """The Bank's login, read from the phone's own files over adb."""

    async def read() -> bool:
        device = AdbDevice(serial_of(pool, device_id), adb_port=adb_port(pool))
        await device.connect(timeout=30)
        out = (await device.shell(f"cat {BANK_STATE}")).stdout.strip()
        return out.startswith("{") and json.loads(out).get("signed_in") == "demo"

    return run(read())


def log_in_by_hand(pool: Pool, device_id: str) -> None:
    """What a person does through the live view on the secure login screen."""

    async def scenario() -> None:
        device = AdbDevice(serial_of(pool, device_id), adb_port=adb_port(pool))
        await device.connect(timeout=30)
        await device.launch("Bank")
        for rid, text in (("username", "demo"), ("password", "1234")):
            await wait_for_node(device, rid=rid)
            await tap_node(device, rid=rid)
            await device.type_text(text)
        await tap_node(device, rid="login_button")
        await wait_for_node(device, rid="balance")

    run(scenario())


def session(api: Api, **body: Any) -> dict[str, Any]:
    opened = api.http.post("/api/v1/sessions", json={"wait_s": 30, **body})
    assert opened.status_code == 201, opened.text
    return opened.json()


def devices_on(api: Api, phone_id: str) -> list[uuid.UUID]:
    async def read() -> list[uuid.UUID]:
        async with open_sessions(api.settings.database_url) as sessions, sessions() as s:
            return list(await s.scalars(select(Device.id).where(Device.personal_phone_id == uuid.UUID(phone_id))))

    return run(read())


def asks_a_person(api: Api, task_id: str) -> dict[str, Any]:
    return api.wait_status(task_id, ("waiting_for_user",), timeout=90)


def test_a_login_made_on_p_serves_ps_tasks_only(
    api: Api, personal_pool: Pool, start_worker: StartWorker, reference_model: ReferenceModel
) -> None:
    pool = personal_pool
    start_worker(reference_model.base_url)
    p, q = phone(api, "P"), phone(api, "Q")
    with pool.managed():
        held = session(api, personal_phone_id=p)
        log_in_by_hand(pool, held["device"]["id"])
        assert api.http.delete(f"/api/v1/sessions/{held['id']}").status_code == 200
        wait_until(lambda: personal(api, p)["state"] == "ready", timeout=30, what="P ready")

        on_p = api.submit(LOGIN, personal_phone_id=p, timeout_s=120)
        assert on_p["personal_phone_id"] == p
        done = api.wait_status(on_p["id"], ("succeeded",), timeout=90)
        assert done["device_id"] == held["device"]["id"]  # P was ready: its device was kept
        assert "balance is $" in done["message"], done["message"]  # nobody had to log in
        assert "wake_s" not in done["result"]["timings"]
        wait_until(lambda: personal(api, p)["state"] == "ready", timeout=30, what="P ready again")
        assert signed_in(pool, held["device"]["id"])

        for fields in ({}, {"personal_phone_id": q}):
            task = api.submit(LOGIN, timeout_s=120, **fields)
            waiting = asks_a_person(api, task["id"])
            assert waiting["waiting"]["kind"] == "takeover", waiting
            assert waiting["device_id"] != held["device"]["id"]  # P's device serves P alone
            assert not signed_in(pool, waiting["device_id"])
            assert api.http.post(f"/api/v1/tasks/{task['id']}/cancel").status_code in (200, 202)
            api.wait_status(task["id"], ("cancelled",), timeout=60)
        assert devices_on(api, p) == [uuid.UUID(held["device"]["id"])]

        # P asleep (unused for idle_stop_s): the next task wakes it, and says how long that took.
        wait_until(lambda: personal(api, q)["state"] in ("ready", "asleep"), timeout=30, what="Q let go")

        async def unused() -> None:
            async with open_sessions(api.settings.database_url) as sessions, sessions.begin() as s:
                await s.execute(update(PersonalPhone).values(last_used_at=utcnow() - dt.timedelta(hours=1)))

        run(unused())
        wait_until(lambda: personal(api, p)["state"] == "asleep", timeout=30, what="P asleep")
        assert devices_on(api, p) == []
        woken = api.submit(LOGIN, personal_phone_id=p, timeout_s=120)
        done = api.wait_status(woken["id"], ("succeeded",), timeout=90)
        assert "balance is $" in done["message"] and done["result"]["timings"]["wake_s"] > 0, done


def test_two_holders_of_p_the_second_waits_then_runs_on_the_same_data(
    api: Api, personal_pool: Pool, start_worker: StartWorker, reference_model: ReferenceModel
) -> None:
    pool = personal_pool
    start_worker(reference_model.base_url, concurrency=2)
    p = phone(api, "P")
    with pool.managed():
        held = session(api, personal_phone_id=p)
        log_in_by_hand(pool, held["device"]["id"])
        task = api.submit(LOGIN, personal_phone_id=p, timeout_s=120)
        busy = wait_until(
            lambda: (t := api.task(task["id"]))["waiting"] and t["waiting"]["kind"] == "personal_phone_busy" and t,
            timeout=60, interval=0.05, what="the task waits for P",
        )  # fmt: skip
        assert busy["status"] == "leasing" and busy["device_id"] is None
        assert devices_on(api, p) == [uuid.UUID(held["device"]["id"])]  # the other phone is idle, unused
        assert api.http.delete(f"/api/v1/sessions/{held['id']}").status_code == 200
        done = api.wait_status(task["id"], ("succeeded",), timeout=90)
        assert done["device_id"] == held["device"]["id"] and "balance is $" in done["message"], done

        # Two tasks on P at once: one after the other, on the one device, never overlapping.
        with ThreadPoolExecutor(2) as executor:
            both = list(executor.map(lambda _: api.submit(LOGIN, personal_phone_id=p, timeout_s=120), range(2)))
        ended = [api.wait_status(t["id"], ("succeeded",), timeout=120) for t in both]
        assert {t["device_id"] for t in ended} == {held["device"]["id"]}
        assert all("balance is $" in t["message"] for t in ended)
        leases: list[Lease] = sorted(
            (lease for t in both for lease in api.rows(t["id"])[2]), key=lambda lease: lease.acquired_at
        )
        assert len(leases) == 2 and leases[0].released_at is not None
        assert leases[0].released_at <= leases[1].acquired_at, leases
        assert devices_on(api, p) == [uuid.UUID(held["device"]["id"])]


def test_a_phone_whose_home_pool_is_gone_waits_naming_it_and_wakes_nowhere_else(
    api: Api, personal_pool: Pool, start_worker: StartWorker, reference_model: ReferenceModel
) -> None:
    """P's data is on pool ``node-gone`` (its first wake was there), which runs no device: the task
    waits, saying so, while this pool's idle devices stay unused (they would hold an empty P)."""
    pool = personal_pool
    start_worker(reference_model.base_url)
    p = phone(api, "P")

    async def pin() -> None:
        async with open_sessions(api.settings.database_url) as sessions, sessions.begin() as s:
            await s.execute(update(PersonalPhone).where(PersonalPhone.id == uuid.UUID(p)).values(home_pool="node-gone"))

    run(pin())
    with pool.managed():
        task = api.submit(LOGIN, personal_phone_id=p, timeout_s=120)
        waits = wait_until(
            lambda: (t := api.task(task["id"]))["waiting"] and t["waiting"]["kind"] == "personal_phone_busy" and t,
            timeout=60, interval=0.05, what="the task waits for P's home pool",
        )  # fmt: skip
        # Said, without the pool's id (fleet detail: the operator reads it as the phone's home_pool).
        assert "wakes only on its home pool" in waits["waiting"]["message"], waits["waiting"]
        assert "node-gone" not in waits["waiting"]["message"], waits["waiting"]
        assert waits["device_id"] is None and devices_on(api, p) == []
        assert api.http.post(f"/api/v1/tasks/{task['id']}/cancel").status_code in (200, 202)
        api.wait_status(task["id"], ("cancelled",), timeout=60)
        assert devices_on(api, p) == [], "never woken on another pool"
