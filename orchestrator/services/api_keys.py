"""Managing a tenant's API keys (admin routes): list, issue, revoke."""

from __future__ import annotations

import uuid

from sqlalchemy import select

from orchestrator.db import ApiKey, User, UserRole
from orchestrator.db.database import Database
from orchestrator.services.auth import ApiKeyVerifier, IssuedKey, Principal, issue_api_key, revoke_api_key

__all__ = ["ApiKeyService"]


class ApiKeyService:
    """The caller's tenant's keys; secrets are only ever returned by ``issue``."""

    def __init__(self, db: Database, verifier: ApiKeyVerifier) -> None:
        self.db = db
        self.verifier = verifier

    async def list(self, principal: Principal) -> list[tuple[ApiKey, User]]:
        """Every key of the tenant, newest first, with its user."""
        async with self.db.transaction() as db_session:
            rows = await db_session.execute(
                select(ApiKey, User)
                .join(User, User.id == ApiKey.user_id)
                .where(ApiKey.tenant_id == principal.tenant_id)
                .order_by(ApiKey.created_at.desc(), ApiKey.id.desc())
            )
            return [(row.ApiKey, row.User) for row in rows]

    async def issue(self, principal: Principal, *, user_name: str, role: UserRole, name: str) -> IssuedKey:
        """A new key for a user of the caller's tenant (created if new)."""
        async with self.db.transaction() as db_session:
            return await issue_api_key(
                db_session, tenant_id=principal.tenant_id, user_name=user_name, role=role, name=name
            )

    async def revoke(self, principal: Principal, key_id: uuid.UUID) -> tuple[ApiKey, User]:
        """Revoke one of the tenant's keys; this process stops accepting it at once."""
        async with self.db.transaction() as db_session:
            key = await revoke_api_key(db_session, tenant_id=principal.tenant_id, key_id=key_id)
            user = await db_session.get_one(User, key.user_id)
        self.verifier.forget(key.prefix)
        return key, user
