"""tasks.waiting: why a task is not moving, {kind, message, since}, or NULL

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-07 05:30:00

A nullable JSON column (JSONB on PostgreSQL), so adding it rewrites no rows and takes no long
lock on either database. Rows written before it read as NULL: "not waiting", which is what the API
said of them before (docs/control-plane.md, "Why a task waits").
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    json_type = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    op.add_column("tasks", sa.Column("waiting", json_type, nullable=True))


def downgrade() -> None:
    # batch mode: SQLite older than 3.35 cannot DROP COLUMN in place.
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("waiting")
