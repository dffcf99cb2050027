"""personal_phones; devices/tasks/sessions.personal_phone_id: a user's persistent phone

Revision ID: 0007
Revises: 0005
Create Date: 2026-12-07 17:30:00

A new table and three nullable columns: adding them rewrites no rows. Rows written before read
NULL: a pooled device, task or session, which is what every one of them was
(docs/personal-phones.md).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_STATES = ("asleep", "waking", "ready", "in_use", "sleeping", "failed")


def _time(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "personal_phones",
        sa.Column("id", sa.Uuid(), nullable=False),
        _time("created_at", nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column(
            "device_profile",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=True,
        ),
        sa.Column("device_id", sa.Uuid(), nullable=True),
        sa.Column("holder", sa.String(255), nullable=True),
        _time("last_used_at"),
        _time("woke_at"),
        sa.Column("wake_ms", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        _time("deleted_at"),
        _time("updated_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["tenant_id"], ["tenants.id"], name=op.f("fk_personal_phones_tenant_id_tenants")
        ),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"], name=op.f("fk_personal_phones_user_id_users")),
        sa.ForeignKeyConstraint(
            ["device_id"],
            ["devices.id"],
            name=op.f("fk_personal_phones_device_id_devices"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_personal_phones")),
        sa.CheckConstraint(
            "state IN (" + ", ".join(f"'{s}'" for s in _STATES) + ")",
            name=op.f("ck_personal_phones_personal_phone_state"),
        ),
    )
    op.create_index(
        op.f("ix_personal_phones_tenant_id_user_id"),
        "personal_phones",
        ["tenant_id", "user_id"],
        unique=False,
    )
    op.add_column("devices", sa.Column("personal_phone_id", sa.Uuid(), nullable=True))
    op.create_index(op.f("ix_devices_personal_phone_id"), "devices", ["personal_phone_id"], unique=False)
    for table in ("tasks", "sessions"):
        # batch mode: SQLite cannot add a foreign key to an existing table in place.
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("personal_phone_id", sa.Uuid(), nullable=True))
            batch.create_foreign_key(
                f"fk_{table}_personal_phone_id_personal_phones", "personal_phones", ["personal_phone_id"],
                ["id"], ondelete="SET NULL",
            )  # fmt: skip


def downgrade() -> None:
    for table in ("sessions", "tasks"):
        with op.batch_alter_table(table) as batch:
            batch.drop_constraint(f"fk_{table}_personal_phone_id_personal_phones", type_="foreignkey")
            batch.drop_column("personal_phone_id")
    op.drop_index(op.f("ix_devices_personal_phone_id"), table_name="devices")
    with op.batch_alter_table("devices") as batch:
        batch.drop_column("personal_phone_id")
    op.drop_index(op.f("ix_personal_phones_tenant_id_user_id"), table_name="personal_phones")
    op.drop_table("personal_phones")
