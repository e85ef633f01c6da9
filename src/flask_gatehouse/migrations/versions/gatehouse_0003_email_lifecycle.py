"""Email confirmation, re-authentication time, and single-use email links.

Accounts that exist before this revision were created when no confirmation existed: they are
marked confirmed at their creation time, so an upgrade locks nobody out.

Revision ID: gatehouse_0003
Revises: gatehouse_0002
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

from flask_gatehouse.models import UTCDateTime

revision = "gatehouse_0003"
down_revision = "gatehouse_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("gatehouse_users") as batch:
        batch.add_column(sa.Column("email_confirmed_at", UTCDateTime(), nullable=True))
        batch.add_column(sa.Column("last_login_at", UTCDateTime(), nullable=True))
    op.execute("UPDATE gatehouse_users SET email_confirmed_at = created_at")

    with op.batch_alter_table("gatehouse_sessions") as batch:
        batch.add_column(sa.Column("authenticated_at", UTCDateTime(), nullable=True))
    op.execute("UPDATE gatehouse_sessions SET authenticated_at = created_at")
    with op.batch_alter_table("gatehouse_sessions") as batch:
        batch.alter_column("authenticated_at", existing_type=UTCDateTime(), nullable=False)

    op.create_table(
        "gatehouse_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("purpose", sa.String(length=20), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["gatehouse_users.id"],
            name=op.f("fk_gatehouse_tokens_user_id_gatehouse_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gatehouse_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_gatehouse_tokens_token_hash")),
    )
    op.create_index(
        op.f("ix_gatehouse_tokens_user_id"), "gatehouse_tokens", ["user_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_gatehouse_tokens_user_id"), table_name="gatehouse_tokens")
    op.drop_table("gatehouse_tokens")
    with op.batch_alter_table("gatehouse_sessions") as batch:
        batch.drop_column("authenticated_at")
    with op.batch_alter_table("gatehouse_users") as batch:
        batch.drop_column("last_login_at")
        batch.drop_column("email_confirmed_at")
