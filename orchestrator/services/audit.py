"""The audit log: what operators and admins did, who did it, and to what (docs/security.md, "Audit log").

``record_audit`` adds one ``audit_log`` row in the caller's own transaction, so the entry and the
change it records commit together or not at all. Actions are dotted nouns and verbs
(``device.drain``, ``api_key.revoke``); ``target`` names what was acted on as ``kind:id``
(``device:<uuid>``, ``api_key:<uuid>``); ``detail`` holds what else explains it, never a secret.

Reading: the operator reads every entry; a tenant's admin reads the entries its tenant's people made.
"""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import select

from orchestrator.db import AuditEntry, DbSession
from orchestrator.db.database import Database
from orchestrator.db.pagination import Page, newest_first, time_page
from orchestrator.errors import PermissionDenied
from orchestrator.services.auth import Principal

__all__ = ["CLI_ROLE", "AuditService", "record_audit"]

CLI_ROLE = "cli"  # the role of an entry made by ``phonefleet admin`` (database access, no key)


async def record_audit(
    db_session: DbSession, principal: Principal | None, action: str, *, target: str, detail: dict | None = None
) -> None:
    """One audit entry in ``db_session``'s transaction (added and flushed, not committed).

    ``principal`` None is the command line (``phonefleet admin``), which holds no key.
    """
    db_session.add(
        AuditEntry(
            id=uuid.uuid4(),
            tenant_id=principal.tenant_id if principal else None,
            key_id=principal.key_id if principal else None,
            user_id=principal.user_id if principal else None,
            role=principal.role.value if principal else CLI_ROLE,
            action=action,
            target=target,
            detail=dict(detail or {}),
        )
    )
    await db_session.flush()


class AuditService:
    """Reading the audit log, newest first."""

    def __init__(self, db: Database) -> None:
        self.db = db

    async def list(
        self,
        principal: Principal,
        *,
        action: str | None = None,
        tenant_id: uuid.UUID | None = None,
        limit: int,
        cursor: str | None,
    ) -> Page[AuditEntry]:
        """The operator's view (every entry; ``tenant_id`` narrows it) or an admin's (its tenant's
        only; another ``tenant_id`` is refused). Raises ``PermissionDenied``, ``InvalidCursor``."""
        if not principal.is_admin:
            raise PermissionDenied("the audit log is read by admins (their tenant's) and the operator")
        if not principal.is_operator:
            if tenant_id is not None and tenant_id != principal.tenant_id:
                raise PermissionDenied("an admin reads its own tenant's audit log only")
            tenant_id = principal.tenant_id
        query: Any = select(AuditEntry)
        if tenant_id is not None:
            query = query.where(AuditEntry.tenant_id == tenant_id)
        if action is not None:
            query = query.where(AuditEntry.action == action)
        query = newest_first(query, AuditEntry, cursor=cursor, limit=limit)
        async with self.db.transaction() as db_session:
            rows = list((await db_session.scalars(query)).all())
        return time_page(rows, limit)
