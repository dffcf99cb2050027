"""Quotas where work starts, over real HTTP on a real PostgreSQL database: a session over its
tenant's ``max_concurrent_devices`` gets 429 naming the limit, a personal phone over
``max_personal_phones`` 409; limits are read by any key of the tenant and set by its admins only;
``allowed_apps`` are package names. (A task over a limit waits: tests/worker/runtask/test_quotas.py.)"""

from __future__ import annotations

import uuid

from orchestrator.db import UserRole
from tests.orchestrator.api.conftest import Api
from tests.orchestrator.api.test_sessions import add_devices, create, session_count

SCREEN = {"width": 1080, "height": 2400}


def test_quotas_default_to_unlimited_and_only_the_operator_sets_them(own_api: Api) -> None:
    admin = own_api.caller(role=UserRole.ADMIN)
    member = own_api.caller(tenant_id=admin.tenant_id)
    other_admin = own_api.caller(role=UserRole.ADMIN)
    operator = own_api.caller(role=UserRole.OPERATOR)
    usage = member.http.get("/api/v1/usage").json()
    assert set(usage["limits"].values()) == {None}, usage["limits"]
    assert usage["totals"]["tasks"] == 0 and len(usage["days"]) == 7

    path = f"/api/v1/tenants/{admin.tenant_id}/limits"
    refused = member.http.put(path, json={"max_concurrent_devices": 1})
    assert refused.status_code == 403, refused.text
    hidden = other_admin.http.put(path, json={"max_concurrent_devices": 1})
    assert hidden.status_code == 404, hidden.text
    own = admin.http.put(path, json={"max_concurrent_devices": 100})  # its own admin may not raise them
    assert own.status_code == 403 and "only the operator" in own.json()["message"], own.text
    bad = operator.http.put(path, json={"max_concurrent_devices": -1})
    assert bad.status_code == 422, bad.text
    done = operator.http.put(path, json={"max_concurrent_devices": 1, "max_personal_phones": None})
    assert done.status_code == 200, done.text
    assert done.json()["overrides"] == {"max_concurrent_devices": 1, "max_personal_phones": None}
    [entry] = operator.http.get("/api/v1/audit", params={"action": "tenant.limits"}).json()["items"]
    assert entry["target"] == f"tenant:{admin.tenant_id}" and entry["detail"]["after"]["max_concurrent_devices"] == 1
    assert member.http.get(path).json()["limits"]["max_concurrent_devices"] == 1
    assert other_admin.http.get("/api/v1/usage").json()["limits"]["max_concurrent_devices"] is None


def test_a_session_over_the_device_limit_is_429_naming_it(own_api: Api) -> None:
    add_devices(own_api.db_url, SCREEN, SCREEN, SCREEN)
    admin = own_api.caller(role=UserRole.ADMIN)
    operator = own_api.caller(role=UserRole.OPERATOR)
    r = operator.http.put(f"/api/v1/tenants/{admin.tenant_id}/limits", json={"max_concurrent_devices": 1})
    assert r.status_code == 200, r.text
    member = own_api.caller(tenant_id=admin.tenant_id)
    first = create(member, ttl_s=60)

    over = member.http.post("/api/v1/sessions", json={"ttl_s": 60, "wait_s": 0})
    assert over.status_code == 429, over.text
    body = over.json()
    assert body["error"] == "quota_exceeded" and body["message"].startswith("max_concurrent_devices"), body
    assert int(over.headers["Retry-After"]) >= 1
    assert session_count(own_api.db_url) == 1  # the refused request left no row behind
    assert (
        own_api.caller().http.post("/api/v1/sessions", json={"ttl_s": 60}).status_code == 201
    )  # another tenant
    usage = member.http.get("/api/v1/usage").json()
    assert usage["now"]["sessions"] == 1 and usage["now"]["devices"] == 1

    assert member.http.delete(f"/api/v1/sessions/{first['id']}").status_code == 200
    create(member, ttl_s=60)  # room again


def test_a_personal_phone_over_the_limit_is_refused(own_api: Api) -> None:
    admin = own_api.caller(role=UserRole.ADMIN)
    operator = own_api.caller(role=UserRole.OPERATOR)
    r = operator.http.put(f"/api/v1/tenants/{admin.tenant_id}/limits", json={"max_personal_phones": 1})
    assert r.status_code == 200, r.text
    made = admin.http.post(
        "/api/v1/personal-phones", json={"name": "one", "allowed_apps": ["com.phonefleet.bank"]}
    )
    assert made.status_code == 201, made.text
    assert made.json()["allowed_apps"] == ["com.phonefleet.bank"]
    member = own_api.caller(tenant_id=admin.tenant_id)  # the limit is the tenant's, not the user's
    over = member.http.post("/api/v1/personal-phones", json={"name": "two"})
    assert over.status_code == 409, over.text
    assert over.json()["error"] == "limit_reached" and "max_personal_phones" in over.json()["message"]
    changed = admin.http.patch(f"/api/v1/personal-phones/{made.json()['id']}", json={"allowed_apps": None})
    assert (
        changed.status_code == 200
        and changed.json()["allowed_apps"] is None
        and changed.json()["name"] == "one"
    )


def test_allowed_apps_are_package_names(own_api: Api) -> None:
    caller = own_api.caller()
    bad = caller.http.post("/api/v1/tasks", json={"instruction": "Pay", "allowed_apps": ["Bank app"]})
    assert bad.status_code == 422 and "not a package name" in bad.text, bad.text
    good = caller.http.post(
        "/api/v1/tasks",
        json={
            "instruction": "Pay",
            "allowed_apps": ["com.phonefleet.bank", "com.phonefleet.bank", "com.android.settings"],
        },
    )
    assert good.status_code == 202, good.text
    assert good.json()["allowed_apps"] == ["com.phonefleet.bank", "com.android.settings"]
    assert (
        caller.http.get(f"/api/v1/tasks/{good.json()['id']}").json()["allowed_apps"]
        == good.json()["allowed_apps"]
    )
    assert uuid.UUID(good.json()["id"])
