"""Rate-limit and lockout counters in the database (the default counter storage).

Counters kept in each process's memory let every gunicorn worker count on its own, so the
lockout allowed as many times the documented attempts as there were workers. Counters and
moving-window entries expire (``expires_at``, seconds since the epoch) and the storage deletes
them as it goes; a downgrade loses only the counts in progress.

Revision ID: gatehouse_0006
Revises: gatehouse_0005
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "gatehouse_0006"
down_revision = "gatehouse_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gatehouse_rate_limit_counters",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("value", sa.Integer(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gatehouse_rate_limit_counters")),
        sa.UniqueConstraint("key", name=op.f("uq_gatehouse_rate_limit_counters_key")),
    )
    op.create_index(
        op.f("ix_gatehouse_rate_limit_counters_expires_at"),
        "gatehouse_rate_limit_counters",
        ["expires_at"],
        unique=False,
    )

    op.create_table(
        "gatehouse_rate_limit_entries",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(length=255), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gatehouse_rate_limit_entries")),
    )
    op.create_index(
        "ix_gatehouse_rate_limit_entries_key",
        "gatehouse_rate_limit_entries",
        ["key", "expires_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_gatehouse_rate_limit_entries_expires_at"),
        "gatehouse_rate_limit_entries",
        ["expires_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_gatehouse_rate_limit_entries_expires_at"),
        table_name="gatehouse_rate_limit_entries",
    )
    op.drop_index("ix_gatehouse_rate_limit_entries_key", table_name="gatehouse_rate_limit_entries")
    op.drop_table("gatehouse_rate_limit_entries")
    op.drop_index(
        op.f("ix_gatehouse_rate_limit_counters_expires_at"),
        table_name="gatehouse_rate_limit_counters",
    )
    op.drop_table("gatehouse_rate_limit_counters")
