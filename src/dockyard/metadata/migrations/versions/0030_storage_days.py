"""tiers: each registry's storage in use at the end of each day (the usage chart)

Revision ID: 0030
Revises: 0029
Create Date: 2026-12-07 04:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0030"
down_revision = "0029"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "storage_days",
        sa.Column("registry_id", sa.Integer(), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("used_bytes", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(["registry_id"], ["registries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("registry_id", "day"),
    )


def downgrade() -> None:
    op.drop_table("storage_days")
