"""tasks: run logs kept in the registry's blob storage after the run, for every node

Revision ID: 0027
Revises: 0026
Create Date: 2026-12-07 01:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0027"
down_revision = "0026"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "task_run_logs",
        sa.Column("run_id", sa.Integer(), nullable=False),
        sa.Column("digest", sa.String(length=71), nullable=False),
        sa.Column("size", sa.BigInteger(), nullable=False),
        sa.Column("stored_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["run_id"], ["task_runs.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("run_id"),
    )
    op.create_index("ix_task_run_logs_stored_at", "task_run_logs", ["stored_at"])


def downgrade() -> None:
    op.drop_index("ix_task_run_logs_stored_at", table_name="task_run_logs")
    op.drop_table("task_run_logs")
