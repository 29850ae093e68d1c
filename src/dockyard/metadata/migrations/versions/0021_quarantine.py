"""quarantine: ACR's quarantinePolicy per registry, and the state a quarantine writer
set per manifest, both watched by the read cache's change counters

Revision ID: 0021
Revises: 0020
Create Date: 2026-12-06 23:05:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0021"
down_revision = "0020"
branch_labels = None
depends_on = None

# (table, counter): which change counter each table's writes bump, as 0012, 0014 and 0018
# do for theirs (`read_cache.CONFIG_TABLES` and `CONTENT_TABLES` list them too).
_WATCHED = (("quarantine_policies", "config"), ("quarantine_states", "content"))
_EVENTS = ("insert", "update", "delete")


def upgrade() -> None:
    op.create_table(
        "quarantine_policies",
        sa.Column("registry_id", sa.Integer(), nullable=False),
        sa.Column("enabled_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["registry_id"], ["registries.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("registry_id"),
    )
    op.create_table(
        "quarantine_states",
        sa.Column("manifest_id", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("details", sa.Text(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["manifest_id"], ["manifests.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("manifest_id"),
    )
    if op.get_bind().dialect.name == "sqlite":
        for table, counter in _WATCHED:
            for event in _EVENTS:
                op.execute(
                    f"CREATE TRIGGER {counter}_{table}_{event} AFTER {event.upper()} ON {table}"
                    f" BEGIN UPDATE {counter}_generation SET value = value + 1 WHERE id = 1; END"
                )
    else:
        # 0018's functions; per statement for content, per row for configuration, as there.
        for table, counter in _WATCHED:
            level = "STATEMENT" if counter == "content" else "ROW"
            op.execute(
                f"CREATE TRIGGER {counter}_{table} AFTER INSERT OR UPDATE OR DELETE ON {table}"
                f" FOR EACH {level} EXECUTE FUNCTION bump_{counter}_generation()"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for table, counter in _WATCHED:
            for event in _EVENTS:
                op.execute(f"DROP TRIGGER {counter}_{table}_{event}")
    else:
        for table, counter in _WATCHED:
            op.execute(f"DROP TRIGGER {counter}_{table} ON {table}")
    op.drop_table("quarantine_states")
    op.drop_table("quarantine_policies")
