"""Mark accounts brought over from the Flask-Login tutorial (``flask gatehouse import-tutorial``).

Their owners never signed up here: the first sign-in mails them a confirmation link worded for
a moved account ("we've moved to a new sign-in system"), not for a new sign-up.

Revision ID: gatehouse_0007
Revises: gatehouse_0006
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

from flask_gatehouse.models import UTCDateTime

revision = "gatehouse_0007"
down_revision = "gatehouse_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # A plain ALTER TABLE ... ADD COLUMN, also on SQLite (see gatehouse_0004 for why not a
    # batch rebuild).
    op.add_column("gatehouse_users", sa.Column("imported_at", UTCDateTime(), nullable=True))


def downgrade() -> None:
    op.drop_column("gatehouse_users", "imported_at")
