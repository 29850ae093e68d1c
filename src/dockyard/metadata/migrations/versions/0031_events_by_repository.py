"""outbox: events by repository and action, newest first (geo-replication's stamps)

Revision ID: 0031
Revises: 0030
Create Date: 2026-12-07 04:30:00.000000
"""

from alembic import op

revision = "0031"
down_revision = "0030"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index(
        "ix_events_repository",
        "events",
        ["registry_id", "repository", "action", "id", "created_at"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_events_repository", table_name="events")
