"""Dashboard logins: a signed, expiring cookie that names an API key, plus a CSRF token.

``POST /api/v1/auth/login`` trades an API key for two cookies (``docs/api.md``, "Dashboard login"):

- ``pf_session`` (HttpOnly): ``v1.<key id>.<login id>.<expires, unix s>.<signature>``, the signature
  being HMAC-SHA256 over the rest with a key derived from ``settings.auth.login_secret``. Nothing is
  stored server-side; each request checks the signature and expiry, then that the key still exists
  and is not revoked (``ApiKeyVerifier.verify_key_id``, cached like Bearer keys), so **revoking the
  key ends its logins** (at once on the revoking process, within the verifier's 10 s elsewhere).
  Logging out clears the browser's cookies; a copied cookie stays valid until it expires or its key
  is revoked.
- ``pf_csrf`` (readable by the page's script): HMAC of the login id under a second derived key. A
  request authenticated by the cookie with an unsafe method (POST, PUT, PATCH, DELETE) must echo it
  in ``X-CSRF-Token`` (double submit): another site can make the browser send the cookie, but cannot
  read ``pf_csrf`` to echo it. Bearer-authenticated requests need no CSRF token (no ambient credential).

For other entry points (the events WebSocket): ``Logins.principal_from_cookies(cookies)`` turns
a request's cookies into the ``Principal`` (``Unauthenticated`` otherwise). A WebSocket handshake is
a GET, so CSRF does not apply; check its ``Origin`` against the dashboard's instead (SameSite=Lax
already keeps the cookie off cross-site handshakes in current browsers). The service is
``app.state.services.logins``.
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import hmac
import secrets
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy import select

from orchestrator.db import Tenant, User
from orchestrator.db.database import Database
from orchestrator.errors import PermissionDenied, Unauthenticated
from orchestrator.services.auth import ApiKeyVerifier, Principal
from orchestrator.settings import Settings

__all__ = [
    "CSRF_COOKIE",
    "CSRF_HEADER",
    "LOGIN_COOKIE",
    "UNSAFE_METHODS",
    "CsrfRejected",
    "Identity",
    "Login",
    "LoginTokens",
    "Logins",
]

# The login cookie keeps its old name, pf_session, so the browsers of people logged in stay logged in.
LOGIN_COOKIE = "pf_session"
CSRF_COOKIE = "pf_csrf"
CSRF_HEADER = "X-CSRF-Token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})

_VERSION = "v1"
_MAX_TOKEN_CHARS = 256  # a real token is ~120; anything longer is not ours, refused before any work


class CsrfRejected(PermissionDenied):
    """A cookie-authenticated unsafe request without the login's CSRF token (403)."""

    code = "csrf_failed"


@dataclass(frozen=True)
class Login:
    """A login as its cookies carry it."""

    key_id: uuid.UUID
    login_id: str
    expires_at: dt.datetime
    token: str  # the pf_session value
    csrf_token: str  # the pf_csrf value


@dataclass(frozen=True)
class Identity:
    """Who a principal is, by name (for the login answer and ``/auth/me``)."""

    principal: Principal
    tenant: str
    user: str


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class LoginTokens:
    """Signs and reads ``pf_session`` values and derives their CSRF tokens; no I/O.

    The two HMAC keys are derived from the one secret with distinct labels, so a CSRF token can never
    be replayed as a signature, and rotating ``login_secret`` ends every login.
    """

    def __init__(self, secret: str, ttl_s: float) -> None:
        if not secret:
            raise ValueError("the login secret must not be empty")
        self.ttl_s = ttl_s
        # The label is part of every signature: changing it would log everybody out.
        self._signing = hmac.new(secret.encode(), b"phonefleet session v1", hashlib.sha256).digest()
        self._csrf = hmac.new(secret.encode(), b"phonefleet csrf v1", hashlib.sha256).digest()

    def issue(self, key_id: uuid.UUID, *, now: float | None = None) -> Login:
        """A new login for the key, valid ``ttl_s`` from ``now`` (unix seconds; default: the clock)."""
        expires = int((time.time() if now is None else now) + self.ttl_s)
        login_id = secrets.token_urlsafe(16)
        body = f"{_VERSION}.{key_id.hex}.{login_id}.{expires}"
        return self._login(key_id, login_id, expires, f"{body}.{self._sign(body)}")

    def read(self, token: str, *, now: float | None = None) -> Login:
        """The login a cookie value carries; raises ``Unauthenticated`` if forged, malformed or expired."""
        parts = token.split(".") if len(token) <= _MAX_TOKEN_CHARS else []
        if len(parts) != 5 or parts[0] != _VERSION:
            raise Unauthenticated("invalid login cookie; log in again")
        body, signature = token.rpartition(".")[0], parts[4]
        if not hmac.compare_digest(signature.encode(), self._sign(body).encode()):
            raise Unauthenticated("invalid login cookie; log in again")
        # Signed by us, so well formed; parsed defensively all the same.
        try:
            key_id, expires = uuid.UUID(hex=parts[1]), int(parts[3])
        except ValueError as exc:
            raise Unauthenticated("invalid login cookie; log in again") from exc
        if expires <= (time.time() if now is None else now):
            raise Unauthenticated("the login expired; log in again")
        return self._login(key_id, parts[2], expires, token)

    def csrf_for(self, login_id: str) -> str:
        """The CSRF token of a login: HMAC of its id, so it needs no storage either."""
        return _b64(hmac.new(self._csrf, login_id.encode(), hashlib.sha256).digest())

    def _sign(self, body: str) -> str:
        return _b64(hmac.new(self._signing, body.encode(), hashlib.sha256).digest())

    def _login(self, key_id: uuid.UUID, login_id: str, expires: int, token: str) -> Login:
        return Login(
            key_id=key_id,
            login_id=login_id,
            expires_at=dt.datetime.fromtimestamp(expires, dt.UTC),
            token=token,
            csrf_token=self.csrf_for(login_id),
        )


class Logins:
    """Login, and authenticating requests by the login cookie (see the module docstring)."""

    def __init__(self, db: Database, verifier: ApiKeyVerifier, tokens: LoginTokens) -> None:
        self.db = db
        self.verifier = verifier
        self.tokens = tokens

    @classmethod
    def from_settings(cls, settings: Settings, db: Database, verifier: ApiKeyVerifier) -> Logins:
        secret = settings.auth.login_secret.get_secret_value()
        return cls(db, verifier, LoginTokens(secret, settings.auth.login_ttl_s))

    async def login(self, api_key: str) -> tuple[Identity, Login]:
        """A new login for a valid key; raises ``Unauthenticated`` (wrong, malformed or revoked key)."""
        principal = await self.verifier.verify(f"Bearer {api_key}")
        return await self.identity(principal), self.tokens.issue(principal.key_id)

    async def principal_from_cookies(self, cookies: Mapping[str, str]) -> tuple[Principal, Login]:
        """The caller of a request carrying ``pf_session``; raises ``Unauthenticated``. No CSRF check."""
        token = cookies.get(LOGIN_COOKIE)
        if not token:
            raise Unauthenticated(f"not logged in: no {LOGIN_COOKIE} cookie")
        login = self.tokens.read(token)
        return await self.verifier.verify_key_id(login.key_id), login

    def check_csrf(self, login: Login, method: str, header: str | None) -> None:
        """Unsafe methods must echo the login's CSRF token; raises ``CsrfRejected`` (403)."""
        if method.upper() not in UNSAFE_METHODS:
            return
        if not header:
            raise CsrfRejected(
                f"missing {CSRF_HEADER} header: a {method.upper()} authenticated by the login cookie "
                f"must send the value of the {CSRF_COOKIE} cookie in {CSRF_HEADER}"
            )
        if not hmac.compare_digest(header.encode(), login.csrf_token.encode()):
            raise CsrfRejected(
                f"{CSRF_HEADER} does not match this login's {CSRF_COOKIE} cookie (log in again if it changed)"
            )

    async def authenticate(
        self, method: str, cookies: Mapping[str, str], csrf_header: str | None
    ) -> tuple[Principal, Login]:
        """An HTTP request authenticated by cookie: the login, the key behind it, then CSRF."""
        principal, login = await self.principal_from_cookies(cookies)
        self.check_csrf(login, method, csrf_header)
        return principal, login

    async def identity(self, principal: Principal) -> Identity:
        """The principal's tenant and user names."""
        async with self.db.transaction() as db_session:
            row = (
                await db_session.execute(
                    select(Tenant.name.label("tenant"), User.name.label("user"))
                    .join(User, User.tenant_id == Tenant.id)
                    .where(Tenant.id == principal.tenant_id, User.id == principal.user_id)
                )
            ).first()
        if row is None:  # the key was verified a moment ago; its user cannot vanish (no deletes)
            raise Unauthenticated("the user of this API key no longer exists")
        return Identity(principal=principal, tenant=row.tenant, user=row.user)
