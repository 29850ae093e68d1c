"""encryption at rest: a registry's customer-managed key, and its wrapped data keys

Revision ID: 0019
Revises: 0018
Create Date: 2026-12-06 21:20:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0019"
down_revision = "0018"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "registry_encryption",
        sa.Column("registry_id", sa.Integer(), nullable=False),
        sa.Column("key_identifier", sa.String(length=512), nullable=False),
        sa.Column("versioned_key_identifier", sa.String(length=512), nullable=False),
        sa.Column("identity", sa.String(length=128), nullable=True),
        sa.Column("enabled_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_rotation_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["registry_id"], ["registries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("registry_id"),
    )
    op.create_table(
        "data_keys",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registry_id", sa.Integer(), nullable=False),
        sa.Column("key_id", sa.String(length=64), nullable=False),
        sa.Column("wrapped", sa.LargeBinary(), nullable=False),
        sa.Column("wrapped_by", sa.String(length=512), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("retired_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["registry_id"], ["registries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("registry_id", "key_id", name="uq_data_keys_registry_key"),
    )


def downgrade() -> None:
    op.drop_table("data_keys")
    op.drop_table("registry_encryption")
