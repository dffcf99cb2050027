"""personal_phones.home_pool: the pool whose host keeps a personal phone's data

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-08 01:30:00

For providers whose personal data lives on one pool's host (redroid: a Docker volume on that
pool's engine), the first wake records the pool's id; only that pool wakes the phone afterwards
(docs/personal-phones.md, "Home pool"). Null: not woken yet, or data every pool reaches.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0017"
down_revision: str | Sequence[str] | None = "0016"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.add_column("personal_phones", sa.Column("home_pool", sa.String(length=255), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("personal_phones") as batch:
        batch.drop_column("home_pool")
