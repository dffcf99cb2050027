"""tenants.retention_days and tenants.deleted_at: per-tenant retention, and a tenant's deletion

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-07 21:30:00

Two nullable columns: adding them rewrites no rows. ``retention_days`` null: the deployment's
``storage.retention_days``. ``deleted_at`` set: ``DELETE /api/v1/tenant`` removed the tenant's data
and is waiting for the pool to remove its personal phones' data before its last rows go
(docs/security.md, "Encryption at rest and retention").
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | Sequence[str] | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tenants", sa.Column("retention_days", sa.Integer(), nullable=True))
    op.add_column("tenants", sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # batch mode: SQLite older than 3.35 cannot DROP COLUMN in place.
    with op.batch_alter_table("tenants") as batch:
        batch.drop_column("deleted_at")
        batch.drop_column("retention_days")
