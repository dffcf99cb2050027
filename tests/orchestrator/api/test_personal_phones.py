"""Personal phone rows over real HTTP (PostgreSQL, then SQLite): make, list, read, rename, delete;
who sees which; the quota; a pool that cannot keep data. Waking them on devices is
tests/device_pool/pool/test_personal_phones.py's."""

from __future__ import annotations

import uuid

from sqlalchemy import update

from device_pool.pool import POOL_LABEL
from orchestrator.db import PersonalPhone, UserRole
from tests.aio import run
from tests.databases import open_sessions
from tests.orchestrator.api.conftest import Api, StartApi
from tests.orchestrator.factories import make_device


def test_make_read_list_rename_and_delete_with_its_name(any_db_api: Api) -> None:
    me = any_db_api.caller()
    made = me.http.post("/api/v1/personal-phones", json={"name": "  work phone ", "device_profile": {"android": "13"}})
    assert made.status_code == 201, made.text
    phone = made.json()
    assert phone["name"] == "work phone" and phone["state"] == "asleep"
    assert phone["device_profile"] == {"android": "13"} and phone["device_id"] is None
    assert phone["last_used_at"] is None and phone["wake_ms"] is None
    url = f"/api/v1/personal-phones/{phone['id']}"

    assert me.http.get(url).json() == phone
    other = me.http.post("/api/v1/personal-phones", json={"name": "second"}).json()
    listed = me.http.get("/api/v1/personal-phones", params={"limit": 1}).json()
    assert [p["id"] for p in listed["items"]] == [other["id"]] and listed["next_cursor"]
    rest = me.http.get("/api/v1/personal-phones", params={"cursor": listed["next_cursor"]}).json()
    assert [p["id"] for p in rest["items"]] == [phone["id"]] and rest["next_cursor"] is None

    renamed = me.http.patch(url, json={"name": "old work phone"})
    assert renamed.status_code == 200 and renamed.json()["name"] == "old work phone"

    refused = me.http.delete(url, params={"confirm": "work phone"})
    assert refused.status_code == 422 and refused.json()["error"] == "confirmation_mismatch"
    assert "?confirm=old work phone" in refused.json()["message"]
    assert me.http.delete(url).status_code == 422
    assert me.http.get(url).status_code == 200  # still there

    gone = me.http.delete(url, params={"confirm": "old work phone"})
    assert gone.status_code == 200 and gone.json()["id"] == phone["id"]
    for answer in (me.http.get(url), me.http.patch(url, json={"name": "x"}),
                   me.http.delete(url, params={"confirm": "old work phone"})):  # fmt: skip
        assert answer.status_code == 404 and answer.json()["error"] == "personal_phone_not_found"
    assert [p["id"] for p in me.http.get("/api/v1/personal-phones").json()["items"]] == [other["id"]]


def test_a_phone_is_its_owners_an_admin_of_the_tenant_lists_and_reads_it_another_tenant_never(
    api: Api,
) -> None:
    owner = api.caller()
    colleague = api.caller(tenant_id=owner.tenant_id)
    admin = api.caller(role=UserRole.ADMIN, tenant_id=owner.tenant_id)
    stranger = api.caller(role=UserRole.ADMIN)
    phone = owner.http.post("/api/v1/personal-phones", json={"name": "mine"}).json()
    url = f"/api/v1/personal-phones/{phone['id']}"

    for caller in (colleague, stranger):
        assert caller.http.get(url).status_code == 404
        assert caller.http.patch(url, json={"name": "taken"}).status_code == 404
        assert caller.http.delete(url, params={"confirm": "mine"}).status_code == 404
        assert caller.http.get("/api/v1/personal-phones").json()["items"] == []
    assert stranger.http.get("/api/v1/personal-phones", params={"scope": "tenant"}).json()["items"] == []
    denied = colleague.http.get("/api/v1/personal-phones", params={"scope": "tenant"})
    assert denied.status_code == 403

    tenant = admin.http.get("/api/v1/personal-phones", params={"scope": "tenant"}).json()["items"]
    assert [(p["id"], p["user_id"]) for p in tenant] == [(phone["id"], phone["user_id"])]
    assert admin.http.get(url).json()["name"] == "mine"
    # An admin does not rename (or use) another user's phone; it may delete it.
    assert admin.http.patch(url, json={"name": "admin's"}).status_code == 404
    assert admin.http.delete(url, params={"confirm": "mine"}).status_code == 200
    assert owner.http.get(url).status_code == 404


def test_quota_per_user(start_api: StartApi, migrated_pg_url: str) -> None:
    api = start_api(migrated_pg_url, personal_phones={"max_per_user": 1})
    me, colleague = api.caller(), None
    assert me.http.post("/api/v1/personal-phones", json={"name": "one"}).status_code == 201
    over = me.http.post("/api/v1/personal-phones", json={"name": "two"})
    assert over.status_code == 409 and over.json()["error"] == "personal_phone_quota"
    assert "max_per_user = 1" in over.json()["message"]
    colleague = api.caller(tenant_id=me.tenant_id)  # the quota is per user
    assert colleague.http.post("/api/v1/personal-phones", json={"name": "one"}).status_code == 201
    one = me.http.get("/api/v1/personal-phones").json()["items"][0]
    assert me.http.delete(f"/api/v1/personal-phones/{one['id']}", params={"confirm": "one"}).status_code == 200
    assert me.http.post("/api/v1/personal-phones", json={"name": "two"}).status_code == 201


def test_static_adb_phones_cannot_be_personal(start_api: StartApi, migrated_pg_url: str) -> None:
    api = start_api(migrated_pg_url, pool={"provider": "static_adb"})
    refused = api.caller().http.post("/api/v1/personal-phones", json={"name": "mine"})
    assert refused.status_code == 409 and refused.json()["error"] == "personal_phones_unsupported"
    assert "static_adb" in refused.json()["message"]


def test_bad_input(api: Api) -> None:
    me = api.caller()
    for body in ({}, {"name": ""}, {"name": "   "}, {"name": "x" * 201}, {"name": "a", "colour": "red"},
                 {"name": "a", "device_profile": "no such profile"}):  # fmt: skip
        answer = me.http.post("/api/v1/personal-phones", json=body)
        assert answer.status_code == 422, (body, answer.text)
    assert me.http.get(f"/api/v1/personal-phones/{uuid.uuid4()}").status_code == 404
    assert me.http.get("/api/v1/personal-phones/not-a-uuid").status_code == 422
    assert me.http.get("/api/v1/personal-phones", params={"scope": "everyone"}).status_code == 422


def test_tasks_list_filters_by_personal_phone(api: Api) -> None:
    me = api.caller()
    p, q = (me.http.post("/api/v1/personal-phones", json={"name": n}).json()["id"] for n in ("P", "Q"))
    on_p = [me.http.post("/api/v1/tasks", json={"instruction": f"on P {i}", "personal_phone_id": p}).json()["id"]
            for i in range(2)]  # fmt: skip
    me.http.post("/api/v1/tasks", json={"instruction": "on Q", "personal_phone_id": q})
    me.http.post("/api/v1/tasks", json={"instruction": "pooled"})

    listed = me.http.get("/api/v1/tasks", params={"personal_phone_id": p}).json()
    assert [t["id"] for t in listed["items"]] == on_p[::-1]
    assert all(t["personal_phone_id"] == p for t in listed["items"])
    assert len(me.http.get("/api/v1/tasks").json()["items"]) == 4
    assert me.http.get("/api/v1/tasks", params={"personal_phone_id": str(uuid.uuid4())}).json()["items"] == []
    assert me.http.get("/api/v1/tasks", params={"personal_phone_id": "nope"}).status_code == 422
    # Another tenant naming P sees none of its tasks (the list is the caller's tenant's).
    stranger = api.caller()
    assert stranger.http.get("/api/v1/tasks", params={"personal_phone_id": p}).json()["items"] == []


def test_the_home_pool_is_shown_to_the_operator_alone(api: Api) -> None:
    """Which pool keeps a phone's data is a fleet detail, like a serial: the operator sees it (on
    the phone and as its devices' pool label), its owner and the tenant's admin do not."""
    operator = api.caller(role=UserRole.OPERATOR)
    admin = api.caller(role=UserRole.ADMIN, tenant_id=operator.tenant_id)
    phone = operator.http.post("/api/v1/personal-phones", json={"name": "pinned"}).json()
    assert phone["home_pool"] is None, "not woken yet"

    async def pin() -> uuid.UUID:
        async with open_sessions(api.db_url) as sessions, sessions.begin() as session:
            await session.execute(
                update(PersonalPhone).where(PersonalPhone.id == uuid.UUID(phone["id"])).values(home_pool="node-7")
            )
            return (await make_device(session, labels={POOL_LABEL: "node-7", "rack": "a1"})).id

    device_id = run(pin())
    url = f"/api/v1/personal-phones/{phone['id']}"
    assert operator.http.get(url).json()["home_pool"] == "node-7"
    listed = operator.http.get("/api/v1/personal-phones").json()["items"]
    assert [p["home_pool"] for p in listed if p["id"] == phone["id"]] == ["node-7"]
    theirs = admin.http.get("/api/v1/personal-phones", params={"scope": "tenant"}).json()["items"]
    assert [p["home_pool"] for p in theirs if p["id"] == phone["id"]] == [None]
    device = f"/api/v1/devices/{device_id}"
    assert operator.http.get(device).json()["labels"] == {POOL_LABEL: "node-7", "rack": "a1"}
    assert admin.http.get(device).json()["labels"] == {"rack": "a1"}
