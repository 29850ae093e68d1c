"""ACR Tasks: task runs (`registries/taskRuns`), a run request kept under a name

Revision ID: 0026
Revises: 0025
Create Date: 2026-12-07 01:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0026"
down_revision = "0025"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "task_run_resources",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registry_id", sa.Integer(), nullable=False),
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("location", sa.String(length=64), nullable=False),
        sa.Column("identity", sa.Text(), nullable=True),
        sa.Column("run_request", sa.Text(), nullable=False),
        sa.Column("force_update_tag", sa.String(length=256), nullable=True),
        sa.Column("run_number", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["registry_id"], ["registries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("registry_id", "name", name="uq_task_run_resources_registry_name"),
    )


def downgrade() -> None:
    op.drop_table("task_run_resources")
