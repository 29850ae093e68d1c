"""geo-replication: the stamps of locks and quarantine states written by peer regions

Revision ID: 0029
Revises: 0028
Create Date: 2026-12-07 01:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0029"
down_revision = "0028"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "attribute_stamps",
        sa.Column("registry_id", sa.Integer(), nullable=False),
        sa.Column("repository", sa.String(length=255), nullable=False),
        sa.Column("target", sa.String(length=200), nullable=False),
        sa.Column("attribute", sa.String(length=32), nullable=False),
        sa.Column("wall", sa.BigInteger(), nullable=False),
        sa.Column("region", sa.String(length=50), nullable=False),
        sa.ForeignKeyConstraint(["registry_id"], ["registries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("registry_id", "repository", "target", "attribute"),
    )


def downgrade() -> None:
    op.drop_table("attribute_stamps")
