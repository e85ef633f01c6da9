"""Security events (the audit log).

Revision ID: gatehouse_0002
Revises: gatehouse_0001
Create Date: 2026-11-28
"""

import sqlalchemy as sa
from alembic import op

from flask_gatehouse.models import UTCDateTime

revision = "gatehouse_0002"
down_revision = "gatehouse_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "gatehouse_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(length=40), nullable=False),
        sa.Column("outcome", sa.String(length=16), nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=True),
        sa.Column("identifier", sa.String(length=254), nullable=True),
        sa.Column("ip", sa.String(length=45), nullable=False),
        sa.Column("user_agent", sa.String(length=512), nullable=False),
        sa.Column("detail", sa.String(length=255), nullable=True),
        sa.ForeignKeyConstraint(
            ["user_id"],
            ["gatehouse_users.id"],
            name=op.f("fk_gatehouse_events_user_id_gatehouse_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_gatehouse_events")),
    )
    for column in ("created_at", "user_id", "identifier"):
        op.create_index(
            op.f(f"ix_gatehouse_events_{column}"), "gatehouse_events", [column], unique=False
        )


def downgrade() -> None:
    for column in ("identifier", "user_id", "created_at"):
        op.drop_index(op.f(f"ix_gatehouse_events_{column}"), table_name="gatehouse_events")
    op.drop_table("gatehouse_events")
