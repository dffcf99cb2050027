"""Dashboard login over real HTTP: cookie flags, CSRF on cookie-authenticated writes, Bearer needs
none, revocation, tampering and expiry end the login, logout."""

from __future__ import annotations

import time
from http.cookies import SimpleCookie

import httpx
import pytest

from orchestrator.db import UserRole
from orchestrator.services.logins import CSRF_COOKIE, LOGIN_COOKIE, LoginTokens
from tests.orchestrator.api.conftest import Api, Caller


def set_cookies(response: httpx.Response) -> dict[str, SimpleCookie]:
    """Each Set-Cookie header, parsed, by cookie name."""
    parsed = {}
    for header in response.headers.get_list("set-cookie"):
        cookie: SimpleCookie = SimpleCookie()
        cookie.load(header)
        for name in cookie:
            parsed[name] = cookie
    return parsed


def cookie(token: str) -> dict[str, str]:
    return {"Cookie": f"{LOGIN_COOKIE}={token}"}


def login(api: Api, caller: Caller) -> tuple[httpx.Client, httpx.Response]:
    """A client without Authorization that logs in with the caller's key; it keeps the cookies."""
    browser = api.client()
    r = browser.post("/api/v1/auth/login", json={"api_key": caller.key})
    assert r.status_code == 200, r.text
    return browser, r


def test_login_sets_the_login_and_csrf_cookies(api: Api) -> None:
    caller = api.caller(role=UserRole.ADMIN)
    _, r = login(api, caller)
    body = r.json()
    assert body["role"] == "admin" and body["auth"] == "cookie"
    assert body["tenant_id"] == str(caller.tenant_id) and body["key_id"] == str(caller.key_id)
    assert body["tenant"].startswith("tenant-") and body["user"].startswith("user-")
    cookies = set_cookies(r)
    login_cookie, csrf = cookies[LOGIN_COOKIE][LOGIN_COOKIE], cookies[CSRF_COOKIE][CSRF_COOKIE]
    assert LOGIN_COOKIE == "pf_session"  # the old name, kept for the browsers already logged in
    assert login_cookie["httponly"] is True and login_cookie["samesite"].lower() == "lax"
    assert login_cookie["path"] == "/"
    assert not login_cookie["secure"]  # plain http here; https sets Secure
    assert 12 * 3600 - 60 <= int(login_cookie["max-age"]) <= 12 * 3600
    assert not csrf["httponly"] and csrf["samesite"].lower() == "lax" and csrf.value == body["csrf_token"]
    assert caller.key not in login_cookie.value  # the cookie names the key, it never carries it
    assert r.headers["cache-control"] == "no-store"


def test_cookie_authenticates_reads_and_writes_need_the_csrf_token(api: Api) -> None:
    caller = api.caller()
    browser, r = login(api, caller)
    csrf = r.json()["csrf_token"]
    me = browser.get("/api/v1/auth/me")
    assert me.status_code == 200 and me.json()["auth"] == "cookie" and me.json()["login_expires_at"]
    # session_expires_at: the deprecated name of login_expires_at, answered for one release.
    assert me.json()["session_expires_at"] == me.json()["login_expires_at"]
    assert browser.get("/api/v1/tasks").status_code == 200  # GET: no CSRF token needed

    no_token = browser.post("/api/v1/tasks", json={"instruction": "open Settings"})
    assert no_token.status_code == 403, no_token.text
    assert no_token.json()["error"] == "csrf_failed" and "X-CSRF-Token" in no_token.json()["message"]
    wrong = browser.post("/api/v1/tasks", json={"instruction": "x"}, headers={"X-CSRF-Token": csrf[:-2] + "AA"})
    assert wrong.status_code == 403 and "does not match" in wrong.json()["message"]
    ok = browser.post("/api/v1/tasks", json={"instruction": "open Settings"}, headers={"X-CSRF-Token": csrf})
    assert ok.status_code == 202, ok.text
    listed = caller.http.get("/api/v1/tasks").json()["items"]  # the same tenant, seen through Bearer
    assert [t["id"] for t in listed] == [ok.json()["id"]]


def test_bearer_needs_no_csrf_token_and_wins_over_the_cookie(api: Api) -> None:
    cookie_owner, other = api.caller(), api.caller()
    browser, _ = login(api, cookie_owner)
    r = browser.post("/api/v1/tasks", json={"instruction": "go"},
                     headers={"Authorization": f"Bearer {other.key}"})  # fmt: skip
    assert r.status_code == 202, r.text
    me = browser.get("/api/v1/auth/me", headers={"Authorization": f"Bearer {other.key}"}).json()
    assert me["auth"] == "bearer" and me["key_id"] == str(other.key_id) and me["login_expires_at"] is None
    assert me["session_expires_at"] is None
    # A bad Bearer header is not rescued by a good cookie.
    bad = browser.get("/api/v1/tasks", headers={"Authorization": "Bearer pf_0123abcd_nope"})
    assert bad.status_code == 401


def test_revoking_the_key_ends_the_login(api: Api) -> None:
    admin = api.caller(role=UserRole.ADMIN)
    member = api.caller(tenant_id=admin.tenant_id)
    browser, _ = login(api, member)
    assert browser.get("/api/v1/tasks").status_code == 200
    assert admin.http.post(f"/api/v1/api-keys/{member.key_id}/revoke").status_code == 200
    r = browser.get("/api/v1/tasks")
    assert r.status_code == 401 and "revoked" in r.json()["message"], r.text


@pytest.mark.parametrize("tamper", ["flip_signature", "other_key", "garbage", "too_long"])
def test_a_tampered_cookie_answers_401(api: Api, tamper: str) -> None:
    caller, other = api.caller(), api.caller()
    _, r = login(api, caller)
    token = set_cookies(r)[LOGIN_COOKIE][LOGIN_COOKIE].value
    version, key_hex, sid, expires, signature = token.split(".")
    forged = {
        "flip_signature": f"{version}.{key_hex}.{sid}.{expires}.{signature[:-1]}{'A' if signature[-1] != 'A' else 'B'}",
        "other_key": f"{version}.{other.key_id.hex}.{sid}.{expires}.{signature}",
        "garbage": "not-a-login",
        "too_long": token + "." + "x" * 300,
    }[tamper]
    got = api.client().get("/api/v1/tasks", headers=cookie(forged))
    assert got.status_code == 401 and "invalid login cookie" in got.json()["message"], got.text


def test_an_expired_login_answers_401(api: Api) -> None:
    caller = api.caller()
    secret = api.settings.auth.login_secret.get_secret_value()
    tokens = LoginTokens(secret, ttl_s=api.settings.auth.login_ttl_s)
    expired = tokens.issue(caller.key_id, now=time.time() - api.settings.auth.login_ttl_s - 5)
    fresh = tokens.issue(caller.key_id)  # the same secret signs: the app accepts our own tokens
    assert api.client().get("/api/v1/tasks", headers=cookie(fresh.token)).status_code == 200
    r = api.client().get("/api/v1/tasks", headers=cookie(expired.token))
    assert r.status_code == 401 and "expired" in r.json()["message"], r.text


def test_a_token_signed_with_another_secret_is_refused(api: Api) -> None:
    caller = api.caller()
    forged = LoginTokens("some-other-secret", ttl_s=3600).issue(caller.key_id)
    r = api.client().get("/api/v1/auth/me", headers=cookie(forged.token))
    assert r.status_code == 401 and "invalid login cookie" in r.json()["message"]


def test_logout_clears_the_cookies(api: Api) -> None:
    browser, _ = login(api, api.caller())
    r = browser.post("/api/v1/auth/logout")
    assert r.status_code == 204
    cleared = set_cookies(r)
    for name in (LOGIN_COOKIE, CSRF_COOKIE):
        assert cleared[name][name].value == "" and int(cleared[name][name]["max-age"]) == 0
    assert LOGIN_COOKIE not in browser.cookies
    r = browser.get("/api/v1/auth/me")
    assert r.status_code == 401 and "missing API key" in r.json()["message"]


@pytest.mark.parametrize(
    ("body", "status"),
    [
        ({"api_key": "pf_0123abcd_wrong-secret"}, 401),
        ({"api_key": "sk-not-ours"}, 401),
        ({}, 422),
        ({"api_key": ""}, 422),
        ({"api_key": 12}, 422),
        ({"api_key": "pf_x", "remember": True}, 422),
        ({"api_key": "pf_\x00"}, 422),
    ],
)
def test_bad_logins(api: Api, body: dict[str, object], status: int) -> None:
    r = api.client().post("/api/v1/auth/login", json=body)
    assert r.status_code == status, r.text
    assert not r.headers.get_list("set-cookie")


def test_a_revoked_key_cannot_log_in(api: Api) -> None:
    r = api.client().post("/api/v1/auth/login", json={"api_key": api.caller(revoked=True).key})
    assert r.status_code == 401 and "revoked" in r.json()["message"]


def test_me_with_a_bearer_key(api: Api) -> None:
    caller = api.caller()
    r = caller.http.get("/api/v1/auth/me")
    assert r.status_code == 200, r.text
    assert r.json()["auth"] == "bearer" and r.json()["user_id"] and r.json()["role"] == "member"
