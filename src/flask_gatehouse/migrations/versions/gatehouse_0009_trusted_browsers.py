"""Trusted browsers (sign-ins that skip the second-factor code for a while) and the start of
a required enrolment's grace period.

Only a new table and a plain ALTER TABLE ... ADD COLUMN, also on SQLite (see gatehouse_0004
for why not a batch rebuild). A downgrade forgets every trusted browser: their next sign-in
asks for a code again.

Revision ID: gatehouse_0009
Revises: gatehouse_0008
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

from flask_gatehouse.models import UTCDateTime

revision = "gatehouse_0009"
down_revision = "gatehouse_0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gatehouse_trusted_browsers",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("token_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.Column("last_used_at", UTCDateTime(), nullable=False),
        sa.Column("ip", sa.String(length=45), nullable=False),
        sa.Column("device", sa.String(length=128), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["gatehouse_users.id"],
            name=op.f("fk_gatehouse_trusted_browsers_user_id_gatehouse_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gatehouse_trusted_browsers")),
        sa.UniqueConstraint("token_hash", name=op.f("uq_gatehouse_trusted_browsers_token_hash")),
    )
    op.create_index(
        op.f("ix_gatehouse_trusted_browsers_user_id"),
        "gatehouse_trusted_browsers",
        ["user_id"],
        unique=False,
    )
    op.add_column("gatehouse_users", sa.Column("two_factor_asked_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column("gatehouse_users", "two_factor_asked_at")
    op.drop_index(
        op.f("ix_gatehouse_trusted_browsers_user_id"), table_name="gatehouse_trusted_browsers"
    )
    op.drop_table("gatehouse_trusted_browsers")
