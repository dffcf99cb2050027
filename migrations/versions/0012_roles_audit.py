"""users.role gains ``operator``; the audit log

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-07 21:10:00

The deployment's operator (docs/security.md, "Roles") is a third role beside a tenant's ``admin``
and ``member``: the CHECK on ``users.role`` is rebuilt with it. A deployment that already has users
keeps a way to run its fleet: the oldest admin user (the one ``phonefleet up`` or the first
``phonefleet admin create-key --admin`` made) becomes the operator. Downgrading turns operators
back into admins.

``audit_log`` (docs/security.md, "Audit log"): no foreign keys, an entry outlives what it names.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | Sequence[str] | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _json() -> sa.types.TypeEngine:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _roles(*roles: str) -> None:
    with op.batch_alter_table("users") as batch:
        batch.drop_constraint(op.f("ck_users_user_role"), type_="check")
        allowed = ", ".join(f"'{role}'" for role in roles)
        batch.create_check_constraint(op.f("ck_users_user_role"), f"role IN ({allowed})")


def upgrade() -> None:
    _roles("operator", "admin", "member")
    op.execute(
        "UPDATE users SET role = 'operator' WHERE id = ("
        "SELECT id FROM users WHERE role = 'admin' ORDER BY created_at, id LIMIT 1)"
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("tenant_id", sa.Uuid(), nullable=True),
        sa.Column("key_id", sa.Uuid(), nullable=True),
        sa.Column("user_id", sa.Uuid(), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("target", sa.String(length=255), nullable=False),
        sa.Column("detail", _json(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
    )
    op.create_index(
        op.f("ix_audit_log_tenant_id_created_at_id"), "audit_log", ["tenant_id", "created_at", "id"]
    )
    op.create_index(op.f("ix_audit_log_created_at_id"), "audit_log", ["created_at", "id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_audit_log_created_at_id"), table_name="audit_log")
    op.drop_index(op.f("ix_audit_log_tenant_id_created_at_id"), table_name="audit_log")
    op.drop_table("audit_log")
    op.execute("UPDATE users SET role = 'admin' WHERE role = 'operator'")
    _roles("admin", "member")
