"""Whether a tenant opted in to text redaction (``redaction.text_tenants``): read by the worker
(what a task's agent masks, whether its recording is sealed) and the API (whether a session's
recording is sealed), so the rule — the tenant's name listed, or ``*`` — is written once."""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from sqlalchemy import select

from orchestrator.db.database import Database
from orchestrator.db.models import Tenant


async def text_redaction_on(db: Database, tenant_id: uuid.UUID, text_tenants: Sequence[str]) -> bool:
    """True when ``text_tenants`` holds ``*`` or the tenant's name (the name is read only then)."""
    if not text_tenants:
        return False
    if "*" in text_tenants:
        return True
    async with db.transaction() as db_session:
        name = await db_session.scalar(select(Tenant.name).where(Tenant.id == tenant_id))
    return name in text_tenants
