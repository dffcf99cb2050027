"""API keys over real HTTP: missing, malformed, wrong, revoked and good keys; admin-only routes."""

from __future__ import annotations

import pytest

from orchestrator.db import UserRole
from tests.orchestrator.api.conftest import Api


@pytest.mark.parametrize(
    ("authorization", "says"),
    [
        (None, "missing API key"),
        ("Basic dXNlcjpwYXNz", "Bearer"),
        ("Bearer", "Bearer"),
        ("Bearer sk-not-ours", "malformed"),
        ("Bearer pf_short", "malformed"),
        ("Bearer pf_0123abcd_wrong-secret", "invalid API key"),
    ],
)
def test_bad_credentials_answer_401(api: Api, authorization: str | None, says: str) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    r = api.client().get("/api/v1/tasks", headers=headers)
    assert r.status_code == 401, r.text
    assert r.json()["error"] == "unauthenticated" and says in r.json()["message"]
    assert r.headers["WWW-Authenticate"].startswith("Bearer")


def test_wrong_secret_for_a_real_prefix_is_401_even_when_cached(api: Api) -> None:
    caller = api.caller()
    assert caller.http.get("/api/v1/tasks").status_code == 200  # now cached
    forged = caller.key[: caller.key.rindex("_") + 1] + "forged-secret"
    for _ in range(2):
        r = api.client(forged).get("/api/v1/tasks")
        assert r.status_code == 401 and r.json()["message"] == "invalid API key"


def test_revoked_key_answers_401(api: Api) -> None:
    caller = api.caller(revoked=True)
    r = caller.http.get("/api/v1/tasks")
    assert r.status_code == 401 and "revoked" in r.json()["message"]


def test_good_key_is_accepted(api: Api) -> None:
    caller = api.caller()
    for _ in range(3):  # the first from the database, the rest from the cache
        assert caller.http.get("/api/v1/tasks").status_code == 200


def test_admin_routes_refuse_members(api: Api) -> None:
    member = api.caller()
    r = member.http.get("/api/v1/api-keys")
    assert r.status_code == 403 and r.json()["error"] == "permission_denied"
    assert member.http.post("/api/v1/api-keys", json={"user": "x"}).status_code == 403


def test_admin_issues_and_revokes_keys_of_its_tenant(api: Api) -> None:
    admin = api.caller(role=UserRole.ADMIN)
    r = admin.http.post("/api/v1/api-keys", json={"user": "ci-bot", "name": "ci"})
    assert r.status_code == 201, r.text
    issued = r.json()
    assert issued["key"].startswith(f"pf_{issued['prefix']}_") and issued["role"] == "member"
    bot = api.client(issued["key"])
    assert bot.get("/api/v1/tasks").status_code == 200  # cached from here on

    listed = admin.http.get("/api/v1/api-keys").json()
    assert issued["id"] in {k["id"] for k in listed} and all("key" not in k for k in listed)

    revoked = admin.http.post(f"/api/v1/api-keys/{issued['id']}/revoke")
    assert revoked.status_code == 200 and revoked.json()["revoked_at"] is not None
    # This process forgets the key at once, cache or not.
    assert bot.get("/api/v1/tasks").status_code == 401

    # Another tenant's admin cannot see or revoke it.
    stranger = api.caller(role=UserRole.ADMIN)
    assert stranger.http.post(f"/api/v1/api-keys/{issued['id']}/revoke").status_code == 404
    assert issued["id"] not in {k["id"] for k in stranger.http.get("/api/v1/api-keys").json()}
