"""Passkeys and security keys (WebAuthn): the credentials, the challenges handed out, and each
account's random user handle.

Only new tables and a plain ALTER TABLE ... ADD COLUMN (see gatehouse_0004 for why not a batch
rebuild); the handle's uniqueness is a separate index, which SQLite can add to an existing
table. A downgrade drops every passkey: those accounts sign in with their password again (a
passkey-only account then needs a password reset).

Revision ID: gatehouse_0010
Revises: gatehouse_0009
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

from flask_gatehouse.models import UTCDateTime

revision = "gatehouse_0010"
down_revision = "gatehouse_0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gatehouse_webauthn_credentials",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("credential_id", sa.LargeBinary(length=1023), nullable=False),
        sa.Column("public_key", sa.LargeBinary(), nullable=False),
        sa.Column("sign_count", sa.BigInteger(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("transports", sa.String(length=200), nullable=False),
        sa.Column("backup_eligible", sa.Boolean(), nullable=False),
        sa.Column("backup_state", sa.Boolean(), nullable=False),
        sa.Column("aaguid", sa.String(length=36), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("last_used_at", UTCDateTime(), nullable=True),
        sa.Column("flagged_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["gatehouse_users.id"],
            name=op.f("fk_gatehouse_webauthn_credentials_user_id_gatehouse_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gatehouse_webauthn_credentials")),
        sa.UniqueConstraint(
            "credential_id", name=op.f("uq_gatehouse_webauthn_credentials_credential_id")
        ),
    )
    op.create_index(
        op.f("ix_gatehouse_webauthn_credentials_user_id"),
        "gatehouse_webauthn_credentials",
        ["user_id"],
        unique=False,
    )
    op.create_table(
        "gatehouse_webauthn_challenges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("challenge", sa.LargeBinary(length=64), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["gatehouse_users.id"],
            name=op.f("fk_gatehouse_webauthn_challenges_user_id_gatehouse_users"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gatehouse_webauthn_challenges")),
        sa.UniqueConstraint("challenge", name=op.f("uq_gatehouse_webauthn_challenges_challenge")),
    )
    op.create_index(
        op.f("ix_gatehouse_webauthn_challenges_user_id"),
        "gatehouse_webauthn_challenges",
        ["user_id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_gatehouse_webauthn_challenges_expires_at"),
        "gatehouse_webauthn_challenges",
        ["expires_at"],
        unique=False,
    )
    op.add_column(
        "gatehouse_users",
        sa.Column("webauthn_user_handle", sa.LargeBinary(length=32), nullable=True),
    )
    op.create_index(
        "uq_gatehouse_users_webauthn_user_handle",
        "gatehouse_users",
        ["webauthn_user_handle"],
        unique=True,
    )


def downgrade() -> None:
    op.drop_index("uq_gatehouse_users_webauthn_user_handle", table_name="gatehouse_users")
    op.drop_column("gatehouse_users", "webauthn_user_handle")
    op.drop_index(
        op.f("ix_gatehouse_webauthn_challenges_expires_at"),
        table_name="gatehouse_webauthn_challenges",
    )
    op.drop_index(
        op.f("ix_gatehouse_webauthn_challenges_user_id"),
        table_name="gatehouse_webauthn_challenges",
    )
    op.drop_table("gatehouse_webauthn_challenges")
    op.drop_index(
        op.f("ix_gatehouse_webauthn_credentials_user_id"),
        table_name="gatehouse_webauthn_credentials",
    )
    op.drop_table("gatehouse_webauthn_credentials")
