"""cache rule authors: the identity that made a cache rule, whose pull right a rule
reading a registry of this server is checked against, when made and at every pull

Revision ID: 0016
Revises: 0015
Create Date: 2026-12-06 16:35:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Rules made before this revision have no author: they read a registry of this
    # server only as the anonymous caller may.
    with op.batch_alter_table("cache_rules", schema=None) as batch_op:
        batch_op.add_column(sa.Column("created_by", sa.String(length=36), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cache_rules", schema=None) as batch_op:
        batch_op.drop_column("created_by")
