"""operation details: what a long-running operation reports to its pollers, as JSON:
its progress while it runs (bytes to copy and copied), what it did once it succeeded

Revision ID: 0017
Revises: 0016
Create Date: 2026-12-06 16:45:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0017"
down_revision = "0016"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("details", sa.Text(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("operations", schema=None) as batch_op:
        batch_op.drop_column("details")
