"""Tenants, as the operator manages them (docs/security.md, "Roles"): list them, and make one with its
first admin key. Everything inside a tenant (its keys, tasks, phones) is its admins' to manage."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError

from orchestrator.db import Tenant, UserRole
from orchestrator.db.database import Database
from orchestrator.db.pagination import Page, newest_first, time_page
from orchestrator.errors import TenantExists
from orchestrator.services.audit import record_audit
from orchestrator.services.auth import IssuedKey, Principal, issue_api_key, require_operator

_OPERATOR_ONLY = "only the operator manages tenants"

__all__ = ["TenantRegistry"]



class TenantRegistry:
    """The deployment's tenants, newest first; the operator only."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def list(self, principal: Principal, *, limit: int, cursor: str | None) -> Page[Tenant]:
        require_operator(principal, _OPERATOR_ONLY)
        async with self.db.transaction() as db_session:
            query = newest_first(select(Tenant), Tenant, cursor=cursor, limit=limit)
            rows = list((await db_session.scalars(query)).all())
        return time_page(rows, limit)

    async def create(self, principal: Principal, *, name: str, admin_user: str) -> tuple[Tenant, IssuedKey]:
        """A new tenant and its first admin's key (shown once); raises ``TenantExists`` (409)."""
        require_operator(principal, _OPERATOR_ONLY)
        try:
            async with self.db.transaction(write=True) as db_session:
                if await db_session.scalar(select(Tenant.id).where(Tenant.name == name)) is not None:
                    raise TenantExists(f"a tenant named {name!r} exists already")
                tenant = Tenant(name=name)
                db_session.add(tenant)
                await db_session.flush()
                issued = await issue_api_key(
                    db_session, tenant_id=tenant.id, user_name=admin_user, role=UserRole.ADMIN, name="first admin key"
                )
                await record_audit(db_session, principal, "tenant.create", target=f"tenant:{tenant.id}",
                                   detail={"name": name, "admin_user": admin_user, "prefix": issued.row.prefix})  # fmt: skip
        except IntegrityError as exc:  # the same name made at the same moment
            raise TenantExists(f"a tenant named {name!r} exists already") from exc
        return tenant, issued
