"""Dashboard login: trade an API key for a login cookie (and its CSRF token), log out, who am I.

The cookies (``services/logins.py`` has the design): ``pf_session`` HttpOnly, ``pf_csrf``
readable by the page; both SameSite=Lax, Path=/, Secure when the request came over https (behind a
TLS-terminating proxy, run uvicorn with ``--proxy-headers`` so it sees the scheme), Max-Age the
login's lifetime (``PHONEFLEET_AUTH__LOGIN_TTL_S``).
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from fastapi import APIRouter, Request, Response

from orchestrator.api.deps import CurrentPrincipal, LoginsDep, login_of
from orchestrator.api.schemas import ErrorOut, LoginIn, LoginOut, WhoAmIOut
from orchestrator.services.logins import CSRF_COOKIE, LOGIN_COOKIE, Identity, Login

__all__ = ["router"]

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

_UNAUTHENTICATED: dict[int | str, dict[str, Any]] = {
    401: {"model": ErrorOut, "description": "Wrong, malformed or revoked API key; bad or expired login"}
}


def _who(identity: Identity, login: Login | None) -> dict[str, Any]:
    p = identity.principal
    expires_at = login.expires_at if login else None
    return {
        "tenant": identity.tenant, "user": identity.user, "role": p.role, "tenant_id": p.tenant_id,
        "user_id": p.user_id, "key_id": p.key_id, "auth": "cookie" if login else "bearer",
        # session_expires_at: the deprecated name, answered for one release (docs/api.md).
        "login_expires_at": expires_at, "session_expires_at": expires_at,
    }  # fmt: skip


def _cookie_flags(request: Request) -> dict[str, Any]:
    return {"path": "/", "samesite": "lax", "secure": request.url.scheme == "https"}


@router.post(
    "/login",
    summary="Log in with an API key (sets the login cookies)",
    responses={**_UNAUTHENTICATED, 422: {"model": ErrorOut, "description": "Invalid body"}},
)
async def login(body: LoginIn, request: Request, response: Response, logins: LoginsDep) -> LoginOut:
    """Checks the key and sets `pf_session` (HttpOnly) and `pf_csrf`; later requests may send the
    cookie instead of `Authorization`, with `X-CSRF-Token: <pf_csrf>` on unsafe methods."""
    identity, new_login = await logins.login(body.api_key)
    max_age = max(1, int((new_login.expires_at - dt.datetime.now(dt.UTC)).total_seconds()))
    flags = _cookie_flags(request)
    response.set_cookie(LOGIN_COOKIE, new_login.token, max_age=max_age, httponly=True, **flags)
    response.set_cookie(CSRF_COOKIE, new_login.csrf_token, max_age=max_age, httponly=False, **flags)
    response.headers["Cache-Control"] = "no-store"
    return LoginOut(**_who(identity, new_login), csrf_token=new_login.csrf_token)


@router.post("/logout", status_code=204, summary="Log out (clears the login cookies)")
async def logout(request: Request) -> Response:
    """Clears both cookies; needs no credentials (an expired login can still log out). The
    login is not stored server-side: a copy of the cookie stays valid until it expires or its
    API key is revoked."""
    response = Response(status_code=204)
    flags = _cookie_flags(request)
    response.delete_cookie(LOGIN_COOKIE, httponly=True, **flags)
    response.delete_cookie(CSRF_COOKIE, httponly=False, **flags)
    return response


@router.get("/me", summary="Who am I (Bearer key or login cookie)", responses=_UNAUTHENTICATED)
async def me(request: Request, principal: CurrentPrincipal, logins: LoginsDep) -> WhoAmIOut:
    """The caller's tenant, user and role, and how it authenticated."""
    return WhoAmIOut(**_who(await logins.identity(principal), login_of(request)))
