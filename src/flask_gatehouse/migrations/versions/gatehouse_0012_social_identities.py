"""Accounts at OpenID Connect and OAuth 2.0 providers linked to users (social login).

Only a new table. A downgrade drops every link: those users sign in by password, passkey or a
password reset, and link their providers again.

Revision ID: gatehouse_0012
Revises: gatehouse_0011
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

from flask_gatehouse.models import UTCDateTime

revision = "gatehouse_0012"
down_revision = "gatehouse_0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gatehouse_social_identities",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("issuer", sa.String(length=255), nullable=False),
        sa.Column("subject", sa.String(length=255), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["gatehouse_users.id"],
            name=op.f("fk_gatehouse_social_identities_user_id_gatehouse_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gatehouse_social_identities")),
    )
    op.create_index(
        "uq_gatehouse_social_identities_issuer",
        "gatehouse_social_identities",
        ["issuer", "subject"],
        unique=True,
    )
    op.create_index(
        op.f("ix_gatehouse_social_identities_user_id"),
        "gatehouse_social_identities",
        ["user_id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_gatehouse_social_identities_user_id"), table_name="gatehouse_social_identities"
    )
    op.drop_index("uq_gatehouse_social_identities_issuer", table_name="gatehouse_social_identities")
    op.drop_table("gatehouse_social_identities")
