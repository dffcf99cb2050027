"""schedules, and tasks.schedule_id / tasks.due_at: tasks submitted again and again

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-07 17:30:00

A new table, and two nullable columns on tasks (no row is rewritten; existing tasks read NULL: not
a schedule's run) with a unique constraint over them, which NULLs never trip: one run per due time
of a schedule, whatever races the schedulers lose (docs/control-plane.md, "Scheduler"). SQLite
adds the foreign key and the constraint in batch mode (a table copy).
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _time(name: str, nullable: bool = True) -> sa.Column:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", sa.Uuid(), nullable=False),
        _time("created_at", nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("task", sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
                  nullable=False),
        sa.Column("cron", sa.String(length=200), nullable=True),
        sa.Column("timezone", sa.String(length=64), nullable=False),
        sa.Column("interval_s", sa.Integer(), nullable=True),
        sa.Column("catch_up", sa.String(length=16), nullable=False),
        sa.Column("overlap", sa.String(length=16), nullable=False),
        sa.Column("paused", sa.Boolean(), nullable=False),
        sa.Column("paused_reason", sa.String(length=64), nullable=True),
        _time("next_due_at", nullable=False),
        _time("last_due_at"),
        sa.Column("last_run_id", sa.Uuid(), nullable=True),
        _time("queued_due_at"),
        sa.Column("counted_run_id", sa.Uuid(), nullable=True),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False),
        _time("updated_at", nullable=False),
        sa.ForeignKeyConstraint(
            ["created_by"], ["api_keys.id"], name=op.f("fk_schedules_created_by_api_keys"), ondelete="SET NULL"
        ),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_schedules_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_schedules")),
        sa.CheckConstraint("catch_up IN ('skip', 'run_once')", name=op.f("ck_schedules_schedule_catch_up")),
        sa.CheckConstraint("overlap IN ('skip', 'queue')", name=op.f("ck_schedules_schedule_overlap")),
    )  # fmt: skip
    op.create_index(
        op.f("ix_schedules_tenant_id_created_at_id"), "schedules", ["tenant_id", "created_at", "id"]
    )
    op.create_index(op.f("ix_schedules_paused_next_due_at"), "schedules", ["paused", "next_due_at"])
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("schedule_id", sa.Uuid(), nullable=True))
        batch.add_column(_time("due_at"))
        batch.create_foreign_key(
            op.f("fk_tasks_schedule_id_schedules"), "schedules", ["schedule_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_unique_constraint(op.f("uq_tasks_schedule_id_due_at"), ["schedule_id", "due_at"])


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_constraint(op.f("uq_tasks_schedule_id_due_at"), type_="unique")
        batch.drop_constraint(op.f("fk_tasks_schedule_id_schedules"), type_="foreignkey")
        batch.drop_column("due_at")
        batch.drop_column("schedule_id")
    op.drop_index(op.f("ix_schedules_paused_next_due_at"), table_name="schedules")
    op.drop_index(op.f("ix_schedules_tenant_id_created_at_id"), table_name="schedules")
    op.drop_table("schedules")
