"""tenants.limits (quotas); tasks.allowed_apps and personal_phones.allowed_apps (app allowlists)

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-07 21:10:00

Three nullable JSON columns: existing tenants keep the settings' limits (unlimited by default), and
existing tasks and personal phones allow every app (docs/security.md, "App allowlist"; docs/api.md,
"Quotas and usage"). A schedule's allowlist travels in its stored task body (``schedules.task``).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | Sequence[str] | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.add_column("tenants", sa.Column("limits", _json(), nullable=True))
    op.add_column("tasks", sa.Column("allowed_apps", _json(), nullable=True))
    op.add_column("personal_phones", sa.Column("allowed_apps", _json(), nullable=True))


def downgrade() -> None:
    # batch mode: SQLite older than 3.35 cannot DROP COLUMN in place.
    for table, column in (
        ("personal_phones", "allowed_apps"),
        ("tasks", "allowed_apps"),
        ("tenants", "limits"),
    ):
        with op.batch_alter_table(table) as batch:
            batch.drop_column(column)
