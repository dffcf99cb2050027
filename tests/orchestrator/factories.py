"""Row factories: each call adds new rows with unique names (flushed, not committed)."""

from __future__ import annotations

import datetime as dt
import hashlib
import secrets
import uuid
from typing import Any, TypeVar

from sqlalchemy.ext.asyncio import AsyncSession

from orchestrator.db import ApiKey, Device, DeviceState, Task, Tenant, User, UserRole, utcnow


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


T = TypeVar("T")


async def _add(session: AsyncSession, row: T) -> T:
    session.add(row)
    await session.flush()
    return row


async def make_tenant(session: AsyncSession, **overrides: Any) -> Tenant:
    return await _add(session, Tenant(**{"name": _unique("tenant"), **overrides}))


async def make_user(session: AsyncSession, tenant: Tenant | None = None, **overrides: Any) -> User:
    tenant = tenant or await make_tenant(session)
    fields = {"tenant_id": tenant.id, "name": _unique("user"), "role": UserRole.MEMBER, **overrides}
    return await _add(session, User(**fields))


async def make_api_key(session: AsyncSession, user: User | None = None, **overrides: Any) -> ApiKey:
    user = user or await make_user(session)
    secret = secrets.token_urlsafe(24)
    fields = {
        "tenant_id": user.tenant_id,
        "user_id": user.id,
        "name": _unique("key"),
        "prefix": secrets.token_hex(4),
        "secret_hash": hashlib.sha256(secret.encode()).hexdigest(),
        **overrides,
    }
    return await _add(session, ApiKey(**fields))


async def make_device(session: AsyncSession, **overrides: Any) -> Device:
    fields = {
        "provider": "sim",
        "serial": f"{_unique('sim')}:5555",
        "profile": {"width": 1080, "height": 2400, "density": 420, "android": 13, "apps": []},
        "state": DeviceState.IDLE,
        **overrides,
    }
    return await _add(session, Device(**fields))


async def make_task(session: AsyncSession, tenant: Tenant | None = None, **overrides: Any) -> Task:
    tenant = tenant or await make_tenant(session)
    fields = {"tenant_id": tenant.id, "instruction": "open Settings and turn on Wi-Fi", **overrides}
    return await _add(session, Task(**fields))


def in_seconds(seconds: float) -> dt.datetime:
    """An aware UTC time ``seconds`` from now."""
    return utcnow() + dt.timedelta(seconds=seconds)
