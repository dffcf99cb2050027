"""Managing a tenant's API keys (admin routes): list, issue, revoke; each change audited.

The rules (docs/security.md, "Roles"): an admin manages its own tenant's keys only; only the
operator issues or revokes an operator's key; and no revocation leaves a tenant without a working
admin key (``LastAdminKey``, 409). ``phonefleet admin revoke-key`` on the database itself is the
operator's way out of that rule.
"""

from __future__ import annotations

import uuid

from sqlalchemy import select

from orchestrator.db import ApiKey, User, UserRole
from orchestrator.db.database import Database
from orchestrator.errors import LastAdminKey, PermissionDenied, UserNotFound
from orchestrator.services.audit import record_audit
from orchestrator.services.auth import ApiKeyVerifier, IssuedKey, Principal, issue_api_key, revoke_api_key

__all__ = ["ADMIN_ROLES", "ApiKeyService"]

ADMIN_ROLES = (UserRole.ADMIN, UserRole.OPERATOR)  # the roles whose keys administer a tenant


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
        """A new key for a user of the caller's tenant (created if new); an operator's key only by the operator."""
        if role == UserRole.OPERATOR and not principal.is_operator:
            raise PermissionDenied("only the operator issues an operator's key")
        async with self.db.transaction() as db_session:
            issued = await issue_api_key(
                db_session, tenant_id=principal.tenant_id, user_name=user_name, role=role, name=name
            )
            await record_audit(db_session, principal, "api_key.issue", target=f"api_key:{issued.row.id}",
                               detail={"user": user_name, "role": role.value, "name": name,
                                       "prefix": issued.row.prefix})  # fmt: skip
            return issued

    async def set_role(self, principal: Principal, user_name: str, role: UserRole) -> User:
        """Change the role of a user of the caller's tenant; its keys carry the new role at once here
        and within the key cache's lifetime elsewhere.

        Raises ``NotFound`` (404, another tenant's user too), ``PermissionDenied`` (the operator's
        role given or taken by anyone but the operator), ``LastAdminKey`` (the user holds the
        tenant's last working admin keys and would no longer be an admin).
        """
        async with self.db.transaction(write=True) as db_session:
            user = await db_session.scalar(
                select(User).where(User.tenant_id == principal.tenant_id, User.name == user_name).with_for_update()
            )
            if user is None:
                raise UserNotFound(f"no user {user_name!r} in your tenant", context={"user": user_name})
            before = user.role
            if UserRole.OPERATOR in (before, role) and not principal.is_operator:
                raise PermissionDenied("only the operator gives or takes the operator's role")
            if before == role:
                return user
            if before in ADMIN_ROLES and role not in ADMIN_ROLES:
                others = await db_session.scalar(
                    select(ApiKey.id)
                    .join(User, User.id == ApiKey.user_id)
                    .where(ApiKey.tenant_id == principal.tenant_id, ApiKey.revoked_at.is_(None),
                           User.role.in_(ADMIN_ROLES), User.id != user.id)
                    .limit(1)
                    .with_for_update(of=ApiKey)
                )  # fmt: skip
                if others is None:
                    raise LastAdminKey(
                        f"user {user_name!r} holds the last working admin keys of your tenant: make another "
                        "admin first", context={"user": user_name},
                    )  # fmt: skip
            user.role = role
            prefixes = list(await db_session.scalars(select(ApiKey.prefix).where(ApiKey.user_id == user.id)))
            await record_audit(db_session, principal, "user.role", target=f"user:{user.id}",
                               detail={"user": user_name, "from": before.value, "to": role.value})  # fmt: skip
        for prefix in prefixes:
            self.verifier.forget(prefix)
        return user

    async def revoke(self, principal: Principal, key_id: uuid.UUID) -> tuple[ApiKey, User]:
        """Revoke one of the tenant's keys; this process stops accepting it at once.

        Raises ``ApiKeyNotFound`` (another tenant's key too), ``PermissionDenied`` (an admin revoking
        the operator's key), ``LastAdminKey`` (it is the tenant's last working admin key).
        """
        async with self.db.transaction(write=True) as db_session:
            # Every working admin key of the tenant, locked: two revocations at once cannot each
            # see the other's key as the one left.
            admin_keys = (
                await db_session.execute(
                    select(ApiKey.id, User.role)
                    .join(User, User.id == ApiKey.user_id)
                    .where(ApiKey.tenant_id == principal.tenant_id, ApiKey.revoked_at.is_(None),
                           User.role.in_(ADMIN_ROLES))
                    .with_for_update(of=ApiKey)
                )
            ).all()  # fmt: skip
            roles = {row.id: row.role for row in admin_keys}
            if roles.get(key_id) == UserRole.OPERATOR and not principal.is_operator:
                raise PermissionDenied("only the operator revokes an operator's key")
            if key_id in roles and len(roles) == 1:
                raise LastAdminKey(
                    f"API key {key_id} is the last working admin key of your tenant: issue another admin "
                    "key first, then revoke this one",
                    context={"key_id": str(key_id)},
                )
            was_revoked = await db_session.scalar(
                select(ApiKey.revoked_at).where(ApiKey.id == key_id, ApiKey.tenant_id == principal.tenant_id)
            )
            key = await revoke_api_key(db_session, tenant_id=principal.tenant_id, key_id=key_id)
            user = await db_session.get_one(User, key.user_id)
            if was_revoked is None:  # revoking a revoked key again changes nothing: no entry
                await record_audit(db_session, principal, "api_key.revoke", target=f"api_key:{key.id}",
                                   detail={"user": user.name, "role": user.role.value, "prefix": key.prefix})  # fmt: skip
        self.verifier.forget(key.prefix)
        return key, user
