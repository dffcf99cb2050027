"""devices.quarantined_at, devices.quarantine_reason: a phone taken out of the pool, and why

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-07 14:40:00

Two nullable columns, so adding them rewrites no rows and takes no long lock on either database.
Rows written before them read as NULL: not quarantined, which is what every device was
(docs/control-plane.md, "Quarantine").
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("devices", sa.Column("quarantined_at", sa.DateTime(timezone=True), nullable=True))
    op.add_column("devices", sa.Column("quarantine_reason", sa.Text(), nullable=True))


def downgrade() -> None:
    # batch mode: SQLite older than 3.35 cannot DROP COLUMN in place.
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("quarantine_reason")
        batch.drop_column("quarantined_at")
