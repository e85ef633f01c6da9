"""Personal access tokens (``Authorization: Bearer gth_...``), stored as their SHA-256.

Only a new table. A downgrade drops every token: their holders get 401 and make new ones.

Revision ID: gatehouse_0011
Revises: gatehouse_0010
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

from flask_gatehouse.models import UTCDateTime

revision = "gatehouse_0011"
down_revision = "gatehouse_0010"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gatehouse_access_tokens",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("prefix", sa.String(length=16), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("scopes", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=True),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.Column("last_used_ip", sa.String(length=45), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["gatehouse_users.id"],
            name=op.f("fk_gatehouse_access_tokens_user_id_gatehouse_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gatehouse_access_tokens")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_gatehouse_access_tokens_token_hash")),
    )
    op.create_index(
        op.f("ix_gatehouse_access_tokens_user_id"),
        "gatehouse_access_tokens",
        ["user_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_gatehouse_access_tokens_user_id"), table_name="gatehouse_access_tokens")
    op.drop_table("gatehouse_access_tokens")
