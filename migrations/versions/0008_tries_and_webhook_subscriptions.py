"""tasks.max_tries (second tries); webhook_subscriptions and webhook_deliveries.subscription_id

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-07 17:50:00

A non-null column with a constant server default, so existing rows read 1 (they had one try) and
adding it takes no long lock on PostgreSQL 11+ (docs/control-plane.md, "Tries").

A tenant's webhook subscriptions (docs/api.md, "Webhook subscriptions") each get their delivery rows:
``subscription_id`` null is the task's own ``webhook_url``. Deleting a subscription deletes its
deliveries (nothing is owed to a subscription that is gone).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.add_column("tasks", sa.Column("max_tries", sa.Integer(), nullable=False, server_default="1"))
    op.create_table(
        "webhook_subscriptions",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("url", sa.String(length=2048), nullable=False),
        sa.Column("events", _json(), nullable=False),
        sa.Column("secret", sa.String(length=128), nullable=False),
        sa.Column("secret_rotated_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_webhook_subscriptions_tenant_id_tenants")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_subscriptions")),
    )
    op.create_index(op.f("ix_webhook_subscriptions_tenant_id"), "webhook_subscriptions", ["tenant_id"])
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.add_column(sa.Column("subscription_id", sa.Uuid(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_webhook_deliveries_subscription_id_webhook_subscriptions"), "webhook_subscriptions",
            ["subscription_id"], ["id"], ondelete="CASCADE",
        )  # fmt: skip


def downgrade() -> None:
    # batch mode: SQLite older than 3.35 cannot DROP COLUMN in place.
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_constraint(
            op.f("fk_webhook_deliveries_subscription_id_webhook_subscriptions"), type_="foreignkey"
        )
        batch.drop_column("subscription_id")
    op.drop_table("webhook_subscriptions")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("max_tries")
