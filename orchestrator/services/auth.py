"""API keys: issuing, verifying (with a short in-process cache) and revoking.

A key reads ``pf_<prefix>_<secret>``: ``prefix`` is 8 hex characters stored in clear and unique,
so a presented key finds its row by index; only sha256(secret) is stored, compared in constant time.
Verified keys are cached for ``ttl_s`` so most requests cost a hash and no database round trip; a
revocation therefore reaches other API processes within ``ttl_s`` (the revoking one drops it at once).
A dashboard login (``logins.py``) names its key by id, and ``verify_key_id`` checks that key
the same way (same cache lifetime), so revoking the key ends its logins too.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import logging
import secrets
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.exc import IntegrityError

from orchestrator.db import ApiKey, DbSession, Tenant, User, UserRole, utcnow
from orchestrator.db.database import Database
from orchestrator.errors import (
    ApiKeyNotFound,
    DatabaseUnavailable,
    InvalidRequest,
    PermissionDenied,
    Unauthenticated,
)

logger = logging.getLogger(__name__)

__all__ = [
    "ApiKeyVerifier",
    "IssuedKey",
    "Principal",
    "get_or_create_tenant",
    "hash_secret",
    "issue_api_key",
    "require_operator",
    "revoke_api_key",
]

KEY_PREFIX = "pf_"
_PREFIX_LEN = 8
# Don't write last_used_at more often than this per key: it is a write on a read path.
_LAST_USED_EVERY = dt.timedelta(minutes=1)


@dataclass(frozen=True)
class Principal:
    """Who is calling: the key, its tenant and user, and the user's role."""

    key_id: uuid.UUID
    tenant_id: uuid.UUID
    user_id: uuid.UUID
    role: UserRole

    @property
    def is_admin(self) -> bool:
        """An admin of its tenant: an ``admin``, or the ``operator`` (who is also its own tenant's admin)."""
        return self.role in (UserRole.ADMIN, UserRole.OPERATOR)

    @property
    def is_operator(self) -> bool:
        """The deployment's operator: the fleet's devices and every tenant."""
        return self.role == UserRole.OPERATOR


def require_operator(principal: Principal, message: str) -> None:
    """Raise ``PermissionDenied(message)`` unless ``principal`` is the deployment's operator (the
    services' own check behind the routes' ``OperatorOnly``)."""
    if not principal.is_operator:
        raise PermissionDenied(message)


@dataclass(frozen=True)
class IssuedKey:
    """A new key: ``key`` is the only time the secret is ever available."""

    row: ApiKey
    user: User
    key: str


def hash_secret(secret: str) -> str:
    """The stored form of a key's secret (sha256, hex)."""
    return hashlib.sha256(secret.encode()).hexdigest()


def _split(key: str) -> tuple[str, str]:
    if not key.startswith(KEY_PREFIX):
        raise Unauthenticated("malformed API key: expected pf_<prefix>_<secret>")
    rest = key[len(KEY_PREFIX) :]
    prefix, sep, secret = rest[:_PREFIX_LEN], rest[_PREFIX_LEN : _PREFIX_LEN + 1], rest[_PREFIX_LEN + 1 :]
    if sep != "_" or len(prefix) != _PREFIX_LEN or not secret:
        raise Unauthenticated("malformed API key: expected pf_<prefix>_<secret>")
    return prefix, secret


@dataclass
class _Cached:
    secret_hash: str
    principal: Principal
    until: float  # time.monotonic()


@dataclass
class _CachedById:
    prefix: str
    principal: Principal
    until: float  # time.monotonic()


class ApiKeyVerifier:
    """Turns an ``Authorization`` header value into a ``Principal`` or raises ``Unauthenticated``."""

    def __init__(self, db: Database, *, ttl_s: float = 10.0, max_entries: int = 10_000) -> None:
        self.db = db
        self.ttl_s = ttl_s
        self.max_entries = max_entries
        self._cache: OrderedDict[str, _Cached] = OrderedDict()
        self._by_id: OrderedDict[uuid.UUID, _CachedById] = OrderedDict()

    async def verify(self, authorization: str | None) -> Principal:
        """Check ``Bearer pf_…``; raises ``Unauthenticated`` with the reason."""
        if not authorization:
            raise Unauthenticated("missing API key: send 'Authorization: Bearer pf_<prefix>_<secret>'")
        scheme, _, key = authorization.strip().partition(" ")
        if scheme.lower() != "bearer" or not key.strip():
            raise Unauthenticated("the Authorization header must read 'Bearer pf_<prefix>_<secret>'")
        prefix, secret = _split(key.strip())
        presented = hash_secret(secret)
        cached = self._cache.get(prefix)
        if cached is not None and cached.until > time.monotonic():
            if hmac.compare_digest(presented, cached.secret_hash):
                return cached.principal
            raise Unauthenticated("invalid API key")
        principal, stored = await self._lookup(prefix, presented)
        self._remember(prefix, stored, principal)
        return principal

    async def verify_key_id(self, key_id: uuid.UUID) -> Principal:
        """The key with this id, if it still exists and is not revoked (a login's key); else
        ``Unauthenticated``. No secret is checked: the caller proved it another way (a signed cookie)."""
        cached = self._by_id.get(key_id)
        if cached is not None and cached.until > time.monotonic():
            return cached.principal
        async with self.db.transaction() as db_session:
            row = (
                await db_session.execute(
                    select(ApiKey, User.role).join(User, User.id == ApiKey.user_id).where(ApiKey.id == key_id)
                )
            ).first()
            if row is None:
                raise Unauthenticated("the API key of this login no longer exists; log in again")
            key: ApiKey = row.ApiKey
            principal, stale, now = self._check(key, row.role, "the API key of this login was revoked")
            prefix = key.prefix
        if stale:
            await self._touch(key_id, now)
        self._by_id[key_id] = _CachedById(prefix, principal, time.monotonic() + self.ttl_s)
        self._by_id.move_to_end(key_id)
        while len(self._by_id) > self.max_entries:
            self._by_id.popitem(last=False)
        return principal

    def forget(self, prefix: str) -> None:
        """Drop a key from this process's caches (after revoking it), logins' lookups by id included."""
        self._cache.pop(prefix, None)
        for key_id in [k for k, cached in self._by_id.items() if cached.prefix == prefix]:
            del self._by_id[key_id]  # a scan: revocations are rare, the cache is bounded

    @staticmethod
    def _check(key: ApiKey, role: UserRole, revoked: str) -> tuple[Principal, bool, dt.datetime]:
        """The principal of a found key, whether its ``last_used_at`` is due a write, and now."""
        if key.revoked_at is not None:
            raise Unauthenticated(revoked)
        now = utcnow()
        stale = key.last_used_at is None or now - key.last_used_at > _LAST_USED_EVERY
        return Principal(key_id=key.id, tenant_id=key.tenant_id, user_id=key.user_id, role=role), stale, now

    async def _lookup(self, prefix: str, presented: str) -> tuple[Principal, str]:
        async with self.db.transaction() as db_session:
            row = (
                await db_session.execute(
                    select(ApiKey, User.role)
                    .join(User, User.id == ApiKey.user_id)
                    .where(ApiKey.prefix == prefix)
                )
            ).first()
            if row is None or not hmac.compare_digest(presented, row.ApiKey.secret_hash):
                raise Unauthenticated("invalid API key")
            key: ApiKey = row.ApiKey
            principal, stale, now = self._check(key, row.role, "this API key was revoked")
            secret_hash = key.secret_hash
        if stale:
            await self._touch(key.id, now)
        return principal, secret_hash

    async def _touch(self, key_id: uuid.UUID, now: dt.datetime) -> None:
        """Record ``last_used_at`` in a write of its own, never failing the request for it.

        Inside the lookup's read transaction the UPDATE would be a lock upgrade, which SQLite
        refuses at once ("database is locked") when another writer got in first; alone, it waits.
        """
        try:
            async with self.db.transaction() as db_session:
                await db_session.execute(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=now))
        except DatabaseUnavailable as exc:
            logger.warning("could not record an API key's last use", extra={"error": exc.message})

    def _remember(self, prefix: str, secret_hash: str, principal: Principal) -> None:
        self._cache[prefix] = _Cached(secret_hash, principal, time.monotonic() + self.ttl_s)
        self._cache.move_to_end(prefix)
        while len(self._cache) > self.max_entries:
            self._cache.popitem(last=False)


async def issue_api_key(
    db_session: DbSession, *, tenant_id: uuid.UUID, user_name: str, role: UserRole, name: str = "default"
) -> IssuedKey:
    """Create a key for user ``user_name`` of the tenant (created with ``role`` if new); flushes, no commit.

    Raises ``InvalidRequest`` if the user exists with a different role.
    """
    user = await db_session.scalar(select(User).where(User.tenant_id == tenant_id, User.name == user_name))
    if user is None:
        user = User(tenant_id=tenant_id, name=user_name, role=role)
        db_session.add(user)
        await db_session.flush()
    elif user.role != role:
        raise InvalidRequest(f"user {user_name!r} exists with role {user.role.value}, not {role.value}")
    for _ in range(5):
        prefix, secret = secrets.token_hex(_PREFIX_LEN // 2), secrets.token_urlsafe(32)
        row = ApiKey(tenant_id=tenant_id, user_id=user.id, name=name, prefix=prefix,
                     secret_hash=hash_secret(secret))  # fmt: skip
        try:
            # A savepoint, so a prefix collision (1 in 4 billion per existing key) retries cleanly.
            async with db_session.begin_nested():
                db_session.add(row)
        except IntegrityError:
            continue
        return IssuedKey(row=row, user=user, key=f"{KEY_PREFIX}{prefix}_{secret}")
    raise RuntimeError("could not find a free API key prefix in 5 tries")


async def get_or_create_tenant(db_session: DbSession, name: str) -> Tenant:
    """The tenant called ``name``, created if missing; flushes, no commit."""
    tenant = await db_session.scalar(select(Tenant).where(Tenant.name == name))
    if tenant is None:
        tenant = Tenant(name=name)
        db_session.add(tenant)
        await db_session.flush()
    return tenant


async def revoke_api_key(db_session: DbSession, *, tenant_id: uuid.UUID, key_id: uuid.UUID) -> ApiKey:
    """Mark the tenant's key revoked (idempotent); raises ``ApiKeyNotFound``."""
    key = await db_session.scalar(select(ApiKey).where(ApiKey.id == key_id, ApiKey.tenant_id == tenant_id))
    if key is None:
        raise ApiKeyNotFound(f"no API key {key_id}")
    if key.revoked_at is None:
        key.revoked_at = utcnow()
        await db_session.flush()
    return key
