"""ACR Tasks: the base images a task's last build started from, for its base image trigger

Revision ID: 0028
Revises: 0027
Create Date: 2026-12-07 01:40:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0028"
down_revision = "0027"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "task_base_images",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("task_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("registry_id", sa.Integer(), nullable=True),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("repository", sa.String(length=255), nullable=False),
        sa.Column("tag", sa.String(length=128), nullable=False),
        sa.Column("digest", sa.String(length=150), nullable=True),
        sa.Column("checked_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(["task_id"], ["tasks.id"], ondelete="CASCADE"),
        sa.ForeignKeyConstraint(["registry_id"], ["registries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint(
            "task_id", "host", "repository", "tag", name="uq_task_base_images_task_image"
        ),
    )
    op.create_index(
        "ix_task_base_images_tag", "task_base_images", ["registry_id", "repository", "tag"]
    )


def downgrade() -> None:
    op.drop_index("ix_task_base_images_tag", table_name="task_base_images")
    op.drop_table("task_base_images")
