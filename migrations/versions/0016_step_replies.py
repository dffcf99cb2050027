"""steps.replies: a planner/grounder pair's step keeps both models' replies and their times

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-08 01:00:00

A task on a planner/grounder endpoint (docs/models.md, "Planner and grounder") asks two models per
step: the planner's reply (its action, targets in words) and each grounder reply (where a target
is) are kept in order with their seconds. Null for a single model's steps and for older steps.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0016"
down_revision: str | Sequence[str] | None = "0015"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    json = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
    op.add_column("steps", sa.Column("replies", json, nullable=True))


def downgrade() -> None:
    # batch mode: SQLite older than 3.35 cannot DROP COLUMN in place.
    with op.batch_alter_table("steps") as batch:
        batch.drop_column("replies")
