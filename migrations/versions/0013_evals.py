"""evals; tasks.eval_id and tasks.evaluation

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-07 21:10:00

An eval groups the tasks of one suite run (docs/evals.md): each of its tasks points at it and carries
what the worker evaluates beside the agent. Nullable columns without defaults: adding them takes no
long lock on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0013"
down_revision: str | Sequence[str] | None = "0012"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _utc() -> sa.types.TypeEngine:
    return sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "evals",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", _utc(), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=False),
        sa.Column("created_by", sa.Uuid(), nullable=True),
        sa.Column("suite", sa.String(length=64), nullable=False),
        sa.Column("models", _json(), nullable=False),
        sa.Column("templates", _json(), nullable=True),
        sa.Column("repeat", sa.Integer(), nullable=False),
        sa.Column("seed", sa.Integer(), nullable=False),
        sa.Column("parallel", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_evals_tenant_id_tenants")),
        sa.ForeignKeyConstraint(
            ["created_by"], ["api_keys.id"], name=op.f("fk_evals_created_by_api_keys"), ondelete="SET NULL"
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_evals")),
    )
    op.create_index(op.f("ix_evals_tenant_id_created_at_id"), "evals", ["tenant_id", "created_at", "id"])
    with op.batch_alter_table("tasks") as batch:
        batch.add_column(sa.Column("eval_id", sa.Uuid(), nullable=True))
        batch.add_column(sa.Column("evaluation", _json(), nullable=True))
        batch.create_foreign_key(
            op.f("fk_tasks_eval_id_evals"), "evals", ["eval_id"], ["id"], ondelete="SET NULL"
        )
        batch.create_index(op.f("ix_tasks_eval_id"), ["eval_id"])


def downgrade() -> None:
    with op.batch_alter_table("tasks") as batch:
        batch.drop_index(op.f("ix_tasks_eval_id"))
        batch.drop_constraint(op.f("fk_tasks_eval_id_evals"), type_="foreignkey")
        batch.drop_column("evaluation")
        batch.drop_column("eval_id")
    op.drop_index(op.f("ix_evals_tenant_id_created_at_id"), table_name="evals")
    op.drop_table("evals")
