"""tasks.retry_after_acting and tasks.retry_at: retries after an infrastructure failure

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-07 14:30:00

Two nullable columns, so adding them rewrites no rows and takes no long lock on either database:

- ``retry_after_acting`` (boolean): the submitter's choice whether an attempt that ended for the
  infrastructure may be retried after the task acted on the phone; NULL is the default rule (yes,
  unless it made a sensitive step). Rows written before it read as NULL: the default.
- ``retry_at`` (timestamp): when a re-queued task's next attempt is due; the sweeper does not take
  its delayed message for lost before then. NULL for every row written before it (none was re-queued).

docs/control-plane.md, "Retries".
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("tasks", sa.Column("retry_after_acting", sa.Boolean(), nullable=True))
    op.add_column("tasks", sa.Column("retry_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    # batch mode: SQLite older than 3.35 cannot DROP COLUMN in place.
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("retry_at")
        batch.drop_column("retry_after_acting")
