"""config_generation: a counter that every change to the tables behind the per-process
configuration reads bumps (on SQLite by triggers), so those reads stay cached while
content (blobs, manifests, tags, audit rows) changes

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-29 18:30:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

# The tables the configuration reads come from (`metadata.read_cache.CONFIG_TABLES` says
# which reads those are), and, for `registries`, the columns that are configuration:
# `storage_used_bytes` changes with every blob.
_TABLES = (
    "network_rules",
    "admin_passwords",
    "identities",
    "identity_secrets",
    "role_assignments",
    "scope_maps",
    "tokens",
    "token_passwords",
    "login_failures",
)
_REGISTRY_COLUMNS = (
    "name, login_server, admin_user_enabled, anonymous_pull_enabled, public_network_access, "
    "network_default_action, retention_days, retention_enabled_at, soft_delete_days, "
    "soft_delete_enabled_at, sku, storage_quota_bytes, subscription_id, resource_group, "
    "location, tags"
)
_BUMP = "BEGIN UPDATE config_generation SET value = value + 1 WHERE id = 1; END"


def _triggers() -> list[tuple[str, str]]:
    triggers = [
        ("config_registries_insert", f"AFTER INSERT ON registries {_BUMP}"),
        ("config_registries_delete", f"AFTER DELETE ON registries {_BUMP}"),
        ("config_registries_update", f"AFTER UPDATE OF {_REGISTRY_COLUMNS} ON registries {_BUMP}"),
    ]
    for table in _TABLES:
        for event in ("insert", "update", "delete"):
            triggers.append(
                (f"config_{table}_{event}", f"AFTER {event.upper()} ON {table} {_BUMP}")
            )
    return triggers


def upgrade() -> None:
    op.create_table(
        "config_generation",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("value", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.execute("INSERT INTO config_generation (id, value) VALUES (1, 0)")
    # Only SQLite caches reads per database change (`PRAGMA data_version`); elsewhere
    # they are kept for a few seconds and the counter is not read.
    if op.get_bind().dialect.name == "sqlite":
        for name, body in _triggers():
            op.execute(f"CREATE TRIGGER {name} {body}")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name, _ in _triggers():
            op.execute(f"DROP TRIGGER {name}")
    op.drop_table("config_generation")
