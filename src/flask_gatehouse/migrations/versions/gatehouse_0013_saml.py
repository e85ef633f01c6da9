"""SAML sign-in: the AuthnRequests browsers were sent with, and the assertions already used.

Only new tables. A downgrade drops them: sign-ins under way at an IdP then fail and start
again.

Revision ID: gatehouse_0013
Revises: gatehouse_0012
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

from flask_gatehouse.models import UTCDateTime

revision = "gatehouse_0013"
down_revision = "gatehouse_0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gatehouse_saml_requests",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("request_id", sa.String(length=100), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("browser_digest", sa.LargeBinary(length=32), nullable=False),
        sa.Column("purpose", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("session_id", sa.Integer(), nullable=True),
        sa.Column("next_url", sa.String(length=2048), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["gatehouse_users.id"],
            name=op.f("fk_gatehouse_saml_requests_user_id_gatehouse_users"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["session_id"],
            ["gatehouse_sessions.id"],
            name=op.f("fk_gatehouse_saml_requests_session_id_gatehouse_sessions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gatehouse_saml_requests")),
        sa.UniqueConstraint("request_id", name=op.f("uq_gatehouse_saml_requests_request_id")),
    )
    op.create_index(
        op.f("ix_gatehouse_saml_requests_browser_digest"),
        "gatehouse_saml_requests",
        ["browser_digest"],
        unique=False,
    )
    op.create_table(
        "gatehouse_saml_assertions",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("issuer", sa.String(length=255), nullable=False),
        sa.Column("assertion_id", sa.String(length=255), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gatehouse_saml_assertions")),
    )
    op.create_index(
        "uq_gatehouse_saml_assertions_issuer",
        "gatehouse_saml_assertions",
        ["issuer", "assertion_id"],
        unique=True,
    )
    op.create_index(
        op.f("ix_gatehouse_saml_assertions_expires_at"),
        "gatehouse_saml_assertions",
        ["expires_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_gatehouse_saml_assertions_expires_at"), table_name="gatehouse_saml_assertions"
    )
    op.drop_index("uq_gatehouse_saml_assertions_issuer", table_name="gatehouse_saml_assertions")
    op.drop_table("gatehouse_saml_assertions")
    op.drop_index(
        op.f("ix_gatehouse_saml_requests_browser_digest"), table_name="gatehouse_saml_requests"
    )
    op.drop_table("gatehouse_saml_requests")
