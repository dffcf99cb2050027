"""The secrets vault: values a tenant stores for the agent to type by name, never shown again.

``POST /api/v1/secrets`` stores one (name, value), ``PUT /api/v1/secrets/{name}`` rotates its value,
``DELETE`` removes it, ``GET`` lists the names. The value is encrypted with ``vault.key``
(``orchestrator/vault_cipher.py``) before it is written and is never returned: no method here
gives it back. The worker reads it (``worker/run/secrets.py``) only to type it through the driver,
when the agent's ``Type_Secret(name=…)`` names it. Every method is scoped to the caller's tenant.
"""

from __future__ import annotations

import re
import uuid

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator
from sqlalchemy import delete, func, select

from orchestrator.db import Secret, utcnow
from orchestrator.db.database import Database
from orchestrator.errors import Conflict, LimitReached, SecretNotFound
from orchestrator.services.audit import record_audit
from orchestrator.services.auth import Principal
from orchestrator.vault_cipher import VaultCipher

__all__ = ["NAME_PATTERN", "SecretExists", "SecretSpec", "SecretValue", "VaultService"]

# A name the model can write in Type_Secret(name="…") without quoting trouble.
NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_.-]{0,63}$"
_NAME = re.compile(NAME_PATTERN)
MAX_VALUE_CHARS = 4096


class SecretExists(Conflict):
    code = "secret_exists"


class SecretValue(BaseModel):
    """A new value for a secret (``PUT /api/v1/secrets/{name}``)."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    value: SecretStr = Field(
        description="The value the agent types; write-only: no answer ever holds it.",
        min_length=1,
        max_length=MAX_VALUE_CHARS,
    )


class SecretSpec(SecretValue):
    """A secret (``POST /api/v1/secrets``)."""

    name: str = Field(
        description='What the model asks for: Type_Secret(name="bank_password"). Letters, digits, _ . -; '
        "starts with a letter; at most 64.",
    )

    @field_validator("name")
    @classmethod
    def _usable_name(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("must start with a letter and hold only letters, digits, _ . - (at most 64)")
        return value


class VaultService:
    """The caller's tenant's secrets (names and times only come back)."""

    def __init__(self, db: Database, cipher: VaultCipher, *, max_per_tenant: int = 100) -> None:
        self.db = db
        self.cipher = cipher
        self.max_per_tenant = max_per_tenant

    async def create(self, principal: Principal, spec: SecretSpec) -> Secret:
        """Store a new secret; ``SecretExists`` (409) when the name is taken (rotate it instead)."""
        token = self.cipher.encrypt(spec.value.get_secret_value())
        async with self.db.transaction(write=True) as db_session:
            count = await db_session.scalar(
                select(func.count()).select_from(Secret).where(Secret.tenant_id == principal.tenant_id)
            )
            if (count or 0) >= self.max_per_tenant:
                raise LimitReached(
                    f"your tenant has {count} secrets, the most it may have (vault.max_per_tenant = "
                    f"{self.max_per_tenant}); delete one first",
                    context={"limit": self.max_per_tenant},
                )
            taken = await db_session.scalar(
                select(Secret.id).where(Secret.tenant_id == principal.tenant_id, Secret.name == spec.name)
            )
            if taken is not None:
                raise SecretExists(
                    f"a secret named {spec.name!r} exists; PUT /api/v1/secrets/{spec.name} gives it a new value",
                    context={"name": spec.name},
                )
            row = Secret(id=uuid.uuid4(), created_at=utcnow(), tenant_id=principal.tenant_id,
                         name=spec.name, value=token)  # fmt: skip
            db_session.add(row)
            await record_audit(db_session, principal, "secret.create", target=f"secret:{spec.name}")
        return row

    async def rotate(self, principal: Principal, name: str, value: SecretValue) -> Secret:
        """A new value for the secret ``name``, in force for the next Type_Secret."""
        token = self.cipher.encrypt(value.value.get_secret_value())
        async with self.db.transaction(write=True) as db_session:
            row = await self._load(db_session, principal, name)
            row.value, row.rotated_at = token, utcnow()
            await record_audit(db_session, principal, "secret.rotate", target=f"secret:{name}")
        return row

    async def list(self, principal: Principal) -> list[Secret]:
        """The tenant's secrets by name (their values stay encrypted in the rows; never sent)."""
        async with self.db.transaction() as db_session:
            rows = await db_session.scalars(
                select(Secret).where(Secret.tenant_id == principal.tenant_id).order_by(Secret.name)
            )
            return list(rows)

    async def get(self, principal: Principal, name: str) -> Secret:
        async with self.db.transaction() as db_session:
            return await self._load(db_session, principal, name)

    async def delete(self, principal: Principal, name: str) -> None:
        async with self.db.transaction(write=True) as db_session:
            row = await self._load(db_session, principal, name)
            await db_session.execute(delete(Secret).where(Secret.id == row.id))
            await record_audit(db_session, principal, "secret.delete", target=f"secret:{name}")

    async def reencrypt_all(self) -> int:
        """Every stored value under the current ``vault.key`` (after a key rotation); how many. The
        operator's step of a key rotation (``phonefleet admin reencrypt-secrets``), audited in the
        same transaction as the command line's other actions are."""
        async with self.db.transaction(write=True) as db_session:
            rows = list(await db_session.scalars(select(Secret)))
            for row in rows:
                row.value = self.cipher.reencrypt(row.value)
            await record_audit(db_session, None, "vault.reencrypt", target="vault", detail={"secrets": len(rows)})
        return len(rows)

    @staticmethod
    async def _load(db_session, principal: Principal, name: str) -> Secret:
        row = await db_session.scalar(
            select(Secret).where(Secret.tenant_id == principal.tenant_id, Secret.name == name)
        )
        if row is None:
            raise SecretNotFound(name)
        return row
