"""audit logs: repository_events (ContainerRegistryRepositoryEvents) and
login_events.correlation_id, both indexed on time for retention

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02 10:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "repository_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("registry_id", sa.Integer(), nullable=False),
        sa.Column("time", sa.DateTime(timezone=True), nullable=False),
        sa.Column("operation", sa.String(length=32), nullable=False),
        sa.Column("repository", sa.String(length=255), nullable=False),
        sa.Column("tag", sa.String(length=128), nullable=True),
        sa.Column("digest", sa.String(length=160), nullable=True),
        sa.Column("result_type", sa.String(length=16), nullable=False),
        sa.Column("result_description", sa.Text(), nullable=True),
        sa.Column("identity", sa.String(length=255), nullable=True),
        sa.Column("caller_ip", sa.String(length=64), nullable=True),
        sa.Column("user_agent", sa.Text(), nullable=True),
        sa.Column("login_server", sa.String(length=255), nullable=True),
        sa.Column("correlation_id", sa.String(length=64), nullable=True),
        sa.Column("size", sa.BigInteger(), nullable=True),
        sa.Column("media_type", sa.String(length=255), nullable=True),
        sa.Column("artifact_type", sa.String(length=255), nullable=True),
        sa.Column("duration_ms", sa.Integer(), nullable=True),
        sa.Column("event_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(["registry_id"], ["registries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id"),
    )
    op.create_index("ix_repository_events_time", "repository_events", ["registry_id", "time"])
    op.create_index("ix_repository_events_pruned", "repository_events", ["time"])
    with op.batch_alter_table("login_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("correlation_id", sa.String(length=64), nullable=True))
    op.create_index("ix_login_events_pruned", "login_events", ["time"])


def downgrade() -> None:
    op.drop_index("ix_login_events_pruned", table_name="login_events")
    with op.batch_alter_table("login_events", schema=None) as batch_op:
        batch_op.drop_column("correlation_id")
    op.drop_index("ix_repository_events_pruned", table_name="repository_events")
    op.drop_index("ix_repository_events_time", table_name="repository_events")
    op.drop_table("repository_events")
