"""Users and server-side sessions.

Revision ID: gatehouse_0001
Revises:
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

from flask_gatehouse.models import UTCDateTime

revision = "gatehouse_0001"
down_revision = None
branch_labels = ("gatehouse",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gatehouse_users",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("password_hash", sa.String(length=255), nullable=True),
        sa.Column("active", sa.Boolean(), server_default=sa.true(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gatehouse_users")),
        sa.UniqueConstraint("email", name=op.f("uq_gatehouse_users_email")),
    )
    op.create_table(
        "gatehouse_sessions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_seen_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("remembered", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=False),
        sa.Column("device", sa.String(length=128), nullable=False),
        sa.Column("user_agent", sa.String(length=512), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["gatehouse_users.id"],
            name=op.f("fk_gatehouse_sessions_user_id_gatehouse_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gatehouse_sessions")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_gatehouse_sessions_token_hash")),
    )
    op.create_index(
        op.f("ix_gatehouse_sessions_user_id"), "gatehouse_sessions", ["user_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_gatehouse_sessions_user_id"), table_name="gatehouse_sessions")
    op.drop_table("gatehouse_sessions")
    op.drop_table("gatehouse_users")
