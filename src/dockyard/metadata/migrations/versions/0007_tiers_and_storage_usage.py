"""tiers and storage usage: registries.sku, storage_quota_bytes and storage_used_bytes
(counted here from the blob rows once; kept by every later change of them)

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-01 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("registries", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("sku", sa.String(length=16), server_default="Premium", nullable=False)
        )
        batch_op.add_column(sa.Column("storage_quota_bytes", sa.BigInteger(), nullable=True))
        batch_op.add_column(
            sa.Column("storage_used_bytes", sa.BigInteger(), server_default="0", nullable=False)
        )
    op.execute(
        "UPDATE registries SET storage_used_bytes = (SELECT COALESCE(SUM(blobs.size), 0) "
        "FROM blobs WHERE blobs.registry_id = registries.id)"
    )


def downgrade() -> None:
    with op.batch_alter_table("registries", schema=None) as batch_op:
        batch_op.drop_column("storage_used_bytes")
        batch_op.drop_column("storage_quota_bytes")
        batch_op.drop_column("sku")
