"""The mail outbox, pending sign-ins, and the operator's "change password at next sign-in".

Revision ID: gatehouse_0004
Revises: gatehouse_0003
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

from flask_gatehouse.models import UTCDateTime

revision = "gatehouse_0004"
down_revision = "gatehouse_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ALTER TABLE ... ADD COLUMN, also on SQLite: batch mode would rebuild the table
    # (the default is an expression), and dropping the old table runs the ON DELETE actions
    # of every table that references it (sessions, links and events would be lost).
    op.add_column(
        "gatehouse_users",
        sa.Column(
            "password_change_required", sa.Boolean(), server_default=sa.false(), nullable=False
        ),
    )

    op.create_table(
        "gatehouse_pending_logins",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("method", sa.String(length=20), nullable=False),
        sa.Column("remember", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("next_url", sa.String(length=2048), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["gatehouse_users.id"],
            name=op.f("fk_gatehouse_pending_logins_user_id_gatehouse_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gatehouse_pending_logins")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_gatehouse_pending_logins_token_hash")),
    )
    op.create_index(
        op.f("ix_gatehouse_pending_logins_user_id"),
        "gatehouse_pending_logins",
        ["user_id"],
        unique=False,
    )

    op.create_table(
        "gatehouse_outbox",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("template", sa.String(length=64), nullable=False),
        sa.Column("recipient", sa.String(length=254), nullable=False),
        sa.Column("context", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=10), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("claimed_until", UTCDateTime(), nullable=True),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        sa.Column("error", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gatehouse_outbox")),
    )
    op.create_index(
        "ix_gatehouse_outbox_due", "gatehouse_outbox", ["status", "next_attempt_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_gatehouse_outbox_due", table_name="gatehouse_outbox")
    op.drop_table("gatehouse_outbox")
    op.drop_index(
        op.f("ix_gatehouse_pending_logins_user_id"), table_name="gatehouse_pending_logins"
    )
    op.drop_table("gatehouse_pending_logins")
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+), for the reason given in upgrade().
    op.drop_column("gatehouse_users", "password_change_required")
