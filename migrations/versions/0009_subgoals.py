"""Task chains: tasks.subgoals and tasks.on_step_failure; steps.subgoal

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-07 21:10:00

``tasks.subgoals`` is a task's chain: null for a task without one, else one object per subgoal
(its goal, status and result), rewritten by the worker as the chain goes on. ``on_step_failure``
is what a failed subgoal does (``stop`` | ``ask``), null without a chain. ``steps.subgoal`` is the
0-based subgoal a step was made for (null: no chain). All nullable, no default: adding them takes
no long lock and existing rows read null (no chain), docs/api.md "Task chains".
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def upgrade() -> None:
    op.add_column("tasks", sa.Column("subgoals", _json(), nullable=True))
    op.add_column("tasks", sa.Column("on_step_failure", sa.String(length=8), nullable=True))
    op.add_column("steps", sa.Column("subgoal", sa.Integer(), nullable=True))


def downgrade() -> None:
    # batch mode: SQLite older than 3.35 cannot DROP COLUMN in place.
    with op.batch_alter_table("steps") as batch:
        batch.drop_column("subgoal")
    with op.batch_alter_table("tasks") as batch:
        batch.drop_column("on_step_failure")
        batch.drop_column("subgoals")
