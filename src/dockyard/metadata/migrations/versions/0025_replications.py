"""geo-replication: a registry's replications in other regions, the stamps of tag writes

Revision ID: 0025
Revises: 0024
Create Date: 2026-12-06 23:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0025"
down_revision = "0024"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "replications",
        sa.Column("registry_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("region", sa.String(length=50), nullable=False),
        sa.Column("tags", sa.Text(), server_default="{}", nullable=False),
        sa.Column(
            "region_endpoint_enabled", sa.Boolean(), server_default=sa.true(), nullable=False
        ),
        sa.Column(
            "zone_redundancy", sa.String(length=16), server_default="Disabled", nullable=False
        ),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("message", sa.Text(), nullable=False),
        sa.Column("status_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("last_error_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["registry_id"], ["registries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("registry_id", "name"),
    )
    op.create_table(
        "tag_stamps",
        sa.Column("registry_id", sa.Integer(), nullable=False),
        sa.Column("repository", sa.String(length=255), nullable=False),
        sa.Column("tag", sa.String(length=128), nullable=False),
        sa.Column("wall", sa.BigInteger(), nullable=False),
        sa.Column("region", sa.String(length=50), nullable=False),
        sa.Column("digest", sa.String(length=150), nullable=True),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["registry_id"], ["registries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("registry_id", "repository", "tag"),
    )


def downgrade() -> None:
    op.drop_table("tag_stamps")
    op.drop_table("replications")
