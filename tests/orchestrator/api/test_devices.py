"""Devices over real HTTP: shared state for everyone, lease details only for the lease's tenant."""

from __future__ import annotations

import uuid
from typing import Any

from orchestrator.db import DeviceState, Lease, Tenant
from tests.aio import run
from tests.databases import open_sessions
from tests.orchestrator.api.conftest import Api
from tests.orchestrator.factories import in_seconds, make_device, make_task


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


def test_admins_see_the_serial_and_unknown_devices_are_404(api: Api) -> None:
    from orchestrator.db import UserRole

    admin = api.caller(role=UserRole.ADMIN)
    device_id = idle_device(api.db_url)
    r = admin.http.get(f"/api/v1/devices/{device_id}")
    assert r.status_code == 200 and r.json()["serial"].endswith(":5555")
    r = admin.http.get(f"/api/v1/devices/{uuid.uuid4()}")
    assert r.status_code == 404 and r.json()["error"] == "device_not_found"
