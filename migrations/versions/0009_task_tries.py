"""tasks.max_tries: how many tries the agent gets after its own failures (second tries)

Revision ID: 0009
Revises: 0005
Create Date: 2026-12-07 17:50:00

A non-null column with a constant server default, so existing rows read 1 (they had one try) and
adding it takes no long lock on PostgreSQL 11+ (docs/control-plane.md, "Tries").
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("max_tries", sa.Integer(), nullable=False, server_default="1"))


def downgrade() -> None:
    # batch mode: SQLite older than 3.35 cannot DROP COLUMN in place.
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("max_tries")
