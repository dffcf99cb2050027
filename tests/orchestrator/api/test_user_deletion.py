"""Deleting a user over real HTTP (``DELETE /api/v1/users/{name}``; docs/api.md, "Users"): its keys
stop working, its personal phones are deleted (the pool manager's own ``purge_deleted`` then removes
their data, on a virtual phone provider that keeps it where the API's ``personal_phones.data_dir``
is), the tenant keeps its tasks, the deletion is audited, and the tenant's last admin stays."""

from __future__ import annotations

import uuid
from pathlib import Path

from sqlalchemy import update

from device_pool.pool import LeaseStore
from device_pool.pool.personal_keeper import PersonalPhoneKeeper
from device_pool.providers.sim import SimProvider, SimProviderConfig
from orchestrator.db import PersonalPhone, PersonalPhoneState, UserRole, make_engine
from tests.aio import run
from tests.databases import open_sessions
from tests.orchestrator.api.conftest import Api
from tests.orchestrator.api.test_roles_audit import audit


def _set_state(api: Api, phone_id: str, state: PersonalPhoneState) -> None:
    async def change() -> None:
        async with open_sessions(api.db_url) as sessions, sessions() as session, session.begin():
            await session.execute(update(PersonalPhone).where(PersonalPhone.id == uuid.UUID(phone_id)).values(state=state))

    run(change())


def _purge(api: Api, tmp_path: Path) -> int:
    """The pool manager's purge of deleted phones (its own code), as ``test_retention.py`` runs it."""

    async def purge() -> int:
        engine = make_engine(api.db_url)
        provider = SimProvider(
            SimProviderConfig(data_root=tmp_path / "phones", personal_root=api.settings.personal_phones.data_dir)
        )
        keeper = PersonalPhoneKeeper(LeaseStore.for_engine(engine), provider, idle_stop_s=600, op_timeout_s=30)
        try:
            return await keeper.purge_deleted()
        finally:
            await engine.dispose()

    return run(purge())


def test_deleting_a_user_ends_its_keys_and_phones_and_keeps_the_tenants_tasks(api: Api, tmp_path: Path) -> None:
    admin = api.caller(role=UserRole.ADMIN)
    other_tenant = api.caller(role=UserRole.ADMIN)
    name = f"alice-{uuid.uuid4().hex[:6]}"
    keys = [admin.http.post("/api/v1/api-keys", json={"user": name, "role": "member", "name": n}).json()
            for n in ("laptop", "ci")]  # fmt: skip
    alice = api.client(keys[0]["key"])
    mine = alice.post("/api/v1/personal-phones", json={"name": "P"})
    assert mine.status_code == 201, mine.text
    data = api.settings.personal_phones.data_dir / mine.json()["id"]
    data.mkdir(parents=True)
    (data / "accounts.json").write_text('{"bank": "signed in"}')
    task = alice.post("/api/v1/tasks", json={"instruction": "check the bank"})
    assert task.status_code == 202, task.text

    # Another tenant's admin: not found, as for a name nobody has; nothing changes.
    for who in (name, "nobody-at-all"):
        r = other_tenant.http.delete(f"/api/v1/users/{who}")
        assert r.status_code == 404 and r.json()["error"] == "user_not_found", r.text
    assert admin.http.delete("/api/v1/users/nobody-at-all").status_code == 404

    # A phone in use: refused, nothing changes (its keys still work).
    _set_state(api, mine.json()["id"], PersonalPhoneState.IN_USE)
    busy = admin.http.delete(f"/api/v1/users/{name}")
    assert busy.status_code == 409 and busy.json()["error"] == "personal_phone_in_use", busy.text
    assert alice.get("/api/v1/auth/me").status_code == 200
    _set_state(api, mine.json()["id"], PersonalPhoneState.ASLEEP)

    done = admin.http.delete(f"/api/v1/users/{name}")
    assert done.status_code == 200, done.text
    assert done.json() | {"id": None} == {"id": None, "name": name, "role": "member", "api_keys_revoked": 2,
                                          "personal_phones_deleted": 1}  # fmt: skip
    for key in keys:  # every key of the user, at once
        assert api.client(key["key"]).get("/api/v1/auth/me").status_code == 401
    assert admin.http.get(f"/api/v1/personal-phones/{mine.json()['id']}").status_code == 404
    assert admin.http.get(f"/api/v1/tasks/{task.json()['id']}").status_code == 200  # the tenant's still
    listed = {k["id"]: k["revoked_at"] for k in admin.http.get("/api/v1/api-keys").json()}
    assert all(listed[k["id"]] is not None for k in keys)

    # The pool manager removes the phone's data.
    assert _purge(api, tmp_path) >= 1
    assert not data.exists()

    [entry] = [e for e in audit(admin.http, action="user.delete") if e["detail"]["user"] == name]
    assert entry["target"] == f"user:{done.json()['id']}" and entry["key_id"] == str(admin.key_id)
    assert entry["detail"] == {"user": name, "role": "member", "keys_revoked": 2, "personal_phones": 1}
    assert not [e for e in audit(other_tenant.http, action="user.delete") if e["detail"]["user"] == name]


def test_the_last_admin_stays_and_another_may_delete_itself(api: Api) -> None:
    admin = api.caller(role=UserRole.ADMIN)
    me = admin.http.get("/api/v1/api-keys").json()[0]["user"]
    last = admin.http.delete(f"/api/v1/users/{me}")
    assert last.status_code == 409 and last.json()["error"] == "last_admin_key", last.text
    assert admin.http.get("/api/v1/auth/me").status_code == 200

    second = admin.http.post("/api/v1/api-keys", json={"user": "second-admin", "role": "admin"}).json()
    bye = api.client(second["key"]).delete("/api/v1/users/second-admin")  # itself: allowed while another admin is
    assert bye.status_code == 200 and bye.json()["api_keys_revoked"] == 1, bye.text
    assert api.client(second["key"]).get("/api/v1/auth/me").status_code == 401
    # Now the first admin is the last again; a member may delete nobody.
    assert admin.http.delete(f"/api/v1/users/{me}").status_code == 409
    member = admin.http.post("/api/v1/api-keys", json={"user": "m", "role": "member"}).json()
    r = api.client(member["key"]).delete(f"/api/v1/users/{me}")
    assert r.status_code == 403 and r.json()["error"] == "permission_denied"
