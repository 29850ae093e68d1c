"""repository_events: no index on time alone. Every pull adds a row, and this index cost
a fifth of each insert; pruning goes through (registry_id, time) instead.

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-29 20:45:00.000000
"""

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.drop_index("ix_repository_events_pruned", table_name="repository_events")


def downgrade() -> None:
    op.create_index("ix_repository_events_pruned", "repository_events", ["time"])
