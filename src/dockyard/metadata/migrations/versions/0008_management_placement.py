"""management API: registries.subscription_id, resource_group, location and tags; role
assignments with no registry (server scope)

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01 12:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("registries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("subscription_id", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("resource_group", sa.String(length=90), nullable=True))
        batch_op.add_column(sa.Column("location", sa.String(length=64), nullable=True))
        batch_op.add_column(sa.Column("tags", sa.Text(), nullable=True))
    with op.batch_alter_table("role_assignments", schema=None) as batch_op:
        batch_op.alter_column("registry_id", existing_type=sa.Integer(), nullable=True)


def downgrade() -> None:
    op.execute("DELETE FROM role_assignments WHERE registry_id IS NULL")
    with op.batch_alter_table("role_assignments", schema=None) as batch_op:
        batch_op.alter_column("registry_id", existing_type=sa.Integer(), nullable=False)
    with op.batch_alter_table("registries", schema=None) as batch_op:
        batch_op.drop_column("tags")
        batch_op.drop_column("location")
        batch_op.drop_column("resource_group")
        batch_op.drop_column("subscription_id")
