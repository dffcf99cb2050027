"""Roles and the audit log over real HTTP (docs/security.md): the operator runs the fleet, a tenant's
admin its own keys, no revocation leaves a tenant without an admin key, and every such action is an
audit entry the operator reads whole and a tenant's admins read for their tenant only.

Tenant A's admin against tenant B's devices, tasks, keys and serials, route by route, is
``test_tenant_isolation.py`` (fleet routes ``REFUSED``, the rest ``HIDDEN``, the serial never seen).
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from orchestrator.cli import main
from orchestrator.db import UserRole
from tests.aio import run
from tests.databases import migrate_to_head, open_sessions
from tests.orchestrator.api.conftest import Api
from tests.orchestrator.factories import make_device


def audit(http: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    """Every entry the caller may read, page by page (two per page, so the cursor is walked)."""
    found: list[dict[str, Any]] = []
    cursor = None
    while True:
        r = http.get("/api/v1/audit", params={"limit": 2, **params, **({"cursor": cursor} if cursor else {})})
        assert r.status_code == 200, r.text
        found += r.json()["items"]
        cursor = r.json()["next_cursor"]
        if cursor is None:
            return found


def test_a_tenants_last_admin_key_stays_and_operator_keys_are_the_operators(api: Api) -> None:
    first = api.caller(role=UserRole.ADMIN)
    member = api.caller(tenant_id=first.tenant_id)
    second = first.http.post("/api/v1/api-keys", json={"user": "second-admin", "role": "admin"}).json()
    # A member's key is never the last admin key; the first admin key goes while another is left.
    assert first.http.post(f"/api/v1/api-keys/{member.key_id}/revoke").status_code == 200
    assert api.client(second["key"]).post(f"/api/v1/api-keys/{first.key_id}/revoke").status_code == 200
    last = api.client(second["key"]).post(f"/api/v1/api-keys/{second['id']}/revoke")
    assert last.status_code == 409 and last.json()["error"] == "last_admin_key", last.text
    assert "last working admin key" in last.json()["message"]
    assert api.client(second["key"]).get("/api/v1/api-keys").status_code == 200  # still works

    # The operator's key is the operator's: a tenant admin beside it neither issues nor revokes one.
    operator = api.caller(role=UserRole.OPERATOR)
    colleague = api.caller(role=UserRole.ADMIN, tenant_id=operator.tenant_id)
    r = colleague.http.post("/api/v1/api-keys", json={"user": "root", "role": "operator"})
    assert r.status_code == 403 and "operator" in r.json()["message"]
    r = colleague.http.post(f"/api/v1/api-keys/{operator.key_id}/revoke")
    assert r.status_code == 403 and "operator" in r.json()["message"]
    r = operator.http.post("/api/v1/api-keys", json={"user": f"op-{uuid.uuid4().hex[:6]}", "role": "operator"})
    assert r.status_code == 201 and r.json()["role"] == "operator"
    assert api.client(r.json()["key"]).get("/api/v1/auth/me").json()["role"] == "operator"


def test_every_audited_action_leaves_an_entry_read_by_the_operator_and_the_tenants_admins(
    api: Api, capsys: pytest.CaptureFixture[str]
) -> None:
    operator = api.caller(role=UserRole.OPERATOR)
    admin = api.caller(role=UserRole.ADMIN)
    member = api.caller(tenant_id=admin.tenant_id)

    async def phone() -> uuid.UUID:
        async with open_sessions(api.db_url) as sessions, sessions.begin() as s:
            return (await make_device(s)).id

    drained = str(run(phone()))
    serial = f"phone-{uuid.uuid4().hex[:10]}:5555"
    registered = operator.http.post("/api/v1/devices", json={"serial": serial}).json()["id"]
    for route in ("drain", "undrain"):
        assert operator.http.post(f"/api/v1/devices/{drained}/{route}").status_code == 200
    assert operator.http.post(f"/api/v1/devices/{registered}/retire").status_code == 200
    issued = admin.http.post("/api/v1/api-keys", json={"user": "ci", "role": "member", "name": "ci"}).json()
    assert admin.http.post(f"/api/v1/api-keys/{issued['id']}/revoke").status_code == 200
    # Refused actions change nothing and leave no entry.
    assert admin.http.post(f"/api/v1/devices/{drained}/drain").status_code == 403
    # The command line has no key: its entries say "cli".
    tenant = f"audit-{uuid.uuid4().hex[:8]}"
    assert main(["admin", "--database-url", api.db_url, "create-key", "--tenant", tenant, "--admin"]) == 0
    cli_prefix = capsys.readouterr().out.strip().split("_")[1]

    everything = audit(operator.http)
    mine = {(e["action"], e["target"]) for e in everything if e["key_id"] == str(operator.key_id)}
    assert mine == {
        ("device.register", f"device:{registered}"), ("device.drain", f"device:{drained}"),
        ("device.undrain", f"device:{drained}"), ("device.retire", f"device:{registered}"),
    }  # fmt: skip
    theirs = [e for e in everything if e["key_id"] == str(admin.key_id)]
    assert [(e["action"], e["target"]) for e in theirs] == [  # newest first
        ("api_key.revoke", f"api_key:{issued['id']}"), ("api_key.issue", f"api_key:{issued['id']}"),
    ]  # fmt: skip
    assert all(e["role"] == "admin" and e["tenant_id"] == str(admin.tenant_id) for e in theirs)
    assert theirs[1]["detail"] == {"user": "ci", "role": "member", "name": "ci", "prefix": issued["prefix"]}
    register = next(e for e in everything if e["action"] == "device.register" and e["target"].endswith(registered))
    assert register["detail"]["serial"] == serial and register["role"] == "operator"
    assert any(e["role"] == "cli" and e["detail"].get("prefix") == cli_prefix for e in everything)
    assert not any(e["action"] == "device.drain" and e["key_id"] == str(admin.key_id) for e in everything)
    assert [e["target"] for e in audit(operator.http, action="device.retire") if e["target"].endswith(registered)]

    # A tenant's admin reads its own tenant's entries, and nobody else's.
    seen = audit(admin.http)
    assert {e["id"] for e in seen} == {e["id"] for e in theirs}
    r = admin.http.get("/api/v1/audit", params={"tenant_id": str(operator.tenant_id)})
    assert r.status_code == 403 and r.json()["error"] == "permission_denied"
    assert audit(operator.http, tenant_id=str(admin.tenant_id)) == seen
    r = member.http.get("/api/v1/audit")
    assert r.status_code == 403 and r.json()["error"] == "permission_denied"


def test_the_operator_makes_tenants_with_their_first_admin_key(api: Api) -> None:
    operator, admin = api.caller(role=UserRole.OPERATOR), api.caller(role=UserRole.ADMIN)
    name = f"acme-{uuid.uuid4().hex[:8]}"
    for refused in (admin.http.get("/api/v1/tenants"), admin.http.post("/api/v1/tenants", json={"name": name})):
        assert refused.status_code == 403 and "operator" in refused.json()["message"], refused.text
    made = operator.http.post("/api/v1/tenants", json={"name": name, "admin_user": "alice"})
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["name"] == name and body["admin_key"]["role"] == "admin" and body["admin_key"]["user"] == "alice"
    alice = api.client(body["admin_key"]["key"])
    assert alice.get("/api/v1/auth/me").json()["tenant_id"] == body["id"]
    assert [k["id"] for k in alice.get("/api/v1/api-keys").json()] == [body["admin_key"]["id"]]
    again = operator.http.post("/api/v1/tenants", json={"name": name})
    assert again.status_code == 409 and again.json()["error"] == "tenant_exists"
    listed = operator.http.get("/api/v1/tenants", params={"limit": 100}).json()["items"]
    assert body["id"] in {t["id"] for t in listed}
    [entry] = audit(operator.http, action="tenant.create", tenant_id=str(operator.tenant_id))
    assert entry["target"] == f"tenant:{body['id']}" and entry["detail"]["admin_user"] == "alice"


def test_role_changes_keep_an_admin_and_the_operators_role_and_are_audited(api: Api) -> None:
    admin = api.caller(role=UserRole.ADMIN)
    me = admin.http.get("/api/v1/auth/me").json()["user"]
    bot = admin.http.post("/api/v1/api-keys", json={"user": "bot", "role": "member"}).json()
    bot_http = api.client(bot["key"])
    assert bot_http.get("/api/v1/api-keys").status_code == 403  # a member
    promoted = admin.http.put("/api/v1/users/bot/role", json={"role": "admin"})
    assert promoted.status_code == 200 and promoted.json()["role"] == "admin", promoted.text
    assert bot_http.get("/api/v1/api-keys").status_code == 200  # at once: the key cache forgot it
    # Two admins: either may step down, but not the last one.
    assert bot_http.put(f"/api/v1/users/{me}/role", json={"role": "member"}).status_code == 200
    last = bot_http.put("/api/v1/users/bot/role", json={"role": "member"})
    assert last.status_code == 409 and last.json()["error"] == "last_admin_key", last.text
    assert admin.http.get("/api/v1/api-keys").status_code == 403  # demoted
    # The operator's role is the operator's to give.
    r = bot_http.put("/api/v1/users/bot/role", json={"role": "operator"})
    assert r.status_code == 403 and "operator" in r.json()["message"]
    r = bot_http.put("/api/v1/users/nobody/role", json={"role": "admin"})
    assert r.status_code == 404 and r.json()["error"] == "user_not_found"
    changes = [(e["detail"]["user"], e["detail"]["from"], e["detail"]["to"])
               for e in audit(bot_http, action="user.role")]  # fmt: skip
    assert changes == [(me, "admin", "member"), ("bot", "member", "admin")]


def test_the_first_admin_key_of_a_deployment_is_its_operators(
    sqlite_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """``phonefleet admin create-key --admin`` bootstraps a deployment as ``phonefleet up`` does: the
    first is the operator (so someone can run the fleet); later ones are admins."""
    migrate_to_head(sqlite_url)

    async def roles() -> list[str]:
        from sqlalchemy import select

        from orchestrator.db import User

        async with open_sessions(sqlite_url) as sessions, sessions() as s:
            return [u.value for u in await s.scalars(select(User.role).order_by(User.created_at))]

    args = ["admin", "--database-url", sqlite_url, "create-key", "--tenant", "default", "--admin"]
    assert main(args) == 0
    assert "first admin is its operator" in capsys.readouterr().err
    assert main([*args[:-2], "acme", "--admin"]) == 0
    assert run(roles()) == ["operator", "admin"]
