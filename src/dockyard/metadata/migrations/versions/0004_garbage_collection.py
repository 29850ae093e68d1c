"""garbage collection: uploads.digest, blob links by digest

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23 09:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.add_column(sa.Column("digest", sa.String(length=150), nullable=True))
    with op.batch_alter_table("blob_links", schema=None) as batch_op:
        batch_op.create_index("ix_blob_links_digest", ["digest"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("blob_links", schema=None) as batch_op:
        batch_op.drop_index("ix_blob_links_digest")
    with op.batch_alter_table("uploads", schema=None) as batch_op:
        batch_op.drop_column("digest")
