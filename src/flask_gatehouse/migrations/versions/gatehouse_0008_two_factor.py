"""Two-factor authentication: authenticator apps (TOTP), recovery codes, and the codes tried
on a pending sign-in.

Only new tables and a plain ALTER TABLE ... ADD COLUMN with a default, also on SQLite (see
gatehouse_0004 for why not a batch rebuild). A downgrade drops every second factor: the
accounts sign in with their password alone again.

Revision ID: gatehouse_0008
Revises: gatehouse_0007
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

from flask_gatehouse.models import UTCDateTime

revision = "gatehouse_0008"
down_revision = "gatehouse_0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gatehouse_totp_factors",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("secret", sa.String(length=64), nullable=False),
        sa.Column("confirmed_at", UTCDateTime(), nullable=True),
        sa.Column("last_used_step", sa.BigInteger(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["gatehouse_users.id"],
            name=op.f("fk_gatehouse_totp_factors_user_id_gatehouse_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gatehouse_totp_factors")),
        sa.UniqueConstraint("user_id", name=op.f("uq_gatehouse_totp_factors_user_id")),
    )
    op.create_table(
        "gatehouse_recovery_codes",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("code_hash", sa.LargeBinary(length=32), nullable=False),
        sa.Column("used_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["gatehouse_users.id"],
            name=op.f("fk_gatehouse_recovery_codes_user_id_gatehouse_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gatehouse_recovery_codes")),
    )
    op.create_index(
        op.f("ix_gatehouse_recovery_codes_user_id"),
        "gatehouse_recovery_codes",
        ["user_id"],
        unique=False,
    )
    op.add_column(
        "gatehouse_pending_logins",
        sa.Column("code_attempts", sa.Integer(), server_default="0", nullable=False),
    )
    # The stage a pending sign-in waits at: its page alone may complete it. Rows made before
    # were all waiting for a password change, the one stage with a page then.
    op.add_column(
        "gatehouse_pending_logins",
        sa.Column("stage", sa.String(length=32), server_default="password_change", nullable=False),
    )


def downgrade() -> None:
    op.drop_column("gatehouse_pending_logins", "stage")
    op.drop_column("gatehouse_pending_logins", "code_attempts")
    op.drop_index(
        op.f("ix_gatehouse_recovery_codes_user_id"), table_name="gatehouse_recovery_codes"
    )
    op.drop_table("gatehouse_recovery_codes")
    op.drop_table("gatehouse_totp_factors")
