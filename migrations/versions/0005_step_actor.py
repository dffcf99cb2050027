"""steps.actor: who made a step, the agent or a person during a takeover

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-07 15:20:00

A non-null column with a server default, so existing rows read 'agent' (every step recorded before
it was the agent's) and adding it takes no long lock on PostgreSQL 11+ (a constant default is
stored in the catalogue, not written to each row) (docs/agent.md, "People's steps").
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("steps", sa.Column("actor", sa.String(16), nullable=False, server_default="agent"))


def downgrade() -> None:
    # batch mode: SQLite older than 3.35 cannot DROP COLUMN in place.
    with op.batch_alter_table("steps") as batch:
        batch.drop_column("actor")
