"""The run's side of the vault and of redaction: the task's tenant's secrets, and what its
screenshots have masked.

``TenantSecrets`` is what the run's hooks (``hooks.py``) answer the agent's ``secret_names`` and
``secret_value`` with: the names of the tenant's secrets (told to the model), and one value,
decrypted with ``vault.key`` (``orchestrator/vault_cipher.py``) only when ``Type_Secret`` names
it, handed to the driver and dropped. The agent core never holds the database or the key.

``redaction_rules`` turns the settings into what the agent masks for this task's tenant:
password fields always (unless ``redaction.password_fields`` is off), text patterns when the
tenant opted in (``redaction.text_tenants`` names it, or holds ``*``), looked for where
``redaction.text_source`` says (the view tree's text, OCR of the screenshot, or both).
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

from sqlalchemy import select

from orchestrator.db import Secret
from orchestrator.db.database import Database
from orchestrator.db.redaction import text_redaction_on
from orchestrator.vault_cipher import VaultCipher
from worker.agent.redaction import RedactionRules

__all__ = ["TenantSecrets", "redaction_rules"]

logger = logging.getLogger(__name__)


class TenantSecrets:
    """One tenant's secrets, read from the database on demand."""

    def __init__(self, db: Database, tenant_id: uuid.UUID, cipher: VaultCipher) -> None:
        self.db = db
        self.tenant_id = tenant_id
        self.cipher = cipher

    async def names(self) -> list[str]:
        async with self.db.transaction() as db_session:
            rows = await db_session.scalars(
                select(Secret.name).where(Secret.tenant_id == self.tenant_id).order_by(Secret.name)
            )
            return list(rows)

    async def value(self, name: str) -> str | None:
        """The value of the secret ``name``; None when the tenant has none by that name."""
        async with self.db.transaction() as db_session:
            token = await db_session.scalar(
                select(Secret.value).where(Secret.tenant_id == self.tenant_id, Secret.name == name)
            )
        if token is None:
            return None
        logger.info("typing a secret", extra={"secret_name": name})
        return self.cipher.decrypt(token)


async def redaction_rules(db: Database, tenant_id: uuid.UUID, settings: Any) -> RedactionRules:
    """What the agent masks on this tenant's task (see the module docstring)."""
    config = settings.redaction
    patterns: tuple[tuple[str, str], ...] = ()
    if await text_redaction_on(db, tenant_id, config.text_tenants):
        patterns = tuple(config.text_patterns.items())
    return RedactionRules(passwords=config.password_fields, patterns=patterns, text_source=config.text_source)
