"""secrets (the vault); steps.redactions (the screenshot regions masked before the model saw it)

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 21:10:00

A tenant's secrets for the agent to type by name (docs/security.md, "Secrets vault"): the value is
a Fernet token made with ``secrets.key``, never stored in clear. ``steps.redactions`` lists the
regions of a step's screenshot that were masked (bounds, kind), never what they held; null for
steps recorded before it.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0014"
down_revision: str | Sequence[str] | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.create_table(
        "secrets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.Text(), nullable=False),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_secrets_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_secrets")),
        sa.UniqueConstraint("tenant_id", "name", name=op.f("uq_secrets_tenant_id_name")),
    )
    op.add_column("steps", sa.Column("redactions", _json(), nullable=True))


def downgrade() -> None:
    # batch mode: SQLite older than 3.35 cannot DROP COLUMN in place.
    with op.batch_alter_table("steps") as batch:
        batch.drop_column("redactions")
    op.drop_table("secrets")
