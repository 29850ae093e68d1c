"""recycle bin locks: deleted_manifests and deleted_tags keep the changeable attributes
they had, so that a restore brings the locks back instead of unlocking everything

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-06 15:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

_TABLES = ("deleted_manifests", "deleted_tags")
_LOCKS = ("write_enabled", "delete_enabled", "read_enabled", "list_enabled")


def upgrade() -> None:
    # Items binned before this revision kept no locks: they come back unlocked, as before.
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name in _LOCKS:
                batch_op.add_column(
                    sa.Column(name, sa.Boolean(), server_default=sa.true(), nullable=False)
                )


def downgrade() -> None:
    for table in _TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            for name in _LOCKS:
                batch_op.drop_column(name)
