"""config_generation and content_generation bumped on PostgreSQL too: the read cache
checks them once per request there (SQLite has had its triggers since 0012 and 0014)

The content tables' triggers fire once per statement, however many rows it changes (a
repository's delete, a purge), where per-row ones would rewrite the counter's row once
per row; a statement of theirs that changes nothing (rare: writes there come with real
changes) bumps too, which only empties caches. The configuration tables' fire per row,
as SQLite's: every successful login clears its failures (usually no row), which must not
empty every node's configuration cache.

Revision ID: 0018
Revises: 0017
Create Date: 2026-12-06 16:15:00.000000
"""

from alembic import op

revision = "0018"
down_revision = "0017"
branch_labels = None
depends_on = None

# The tables of `metadata.read_cache.CONFIG_TABLES` and `CONTENT_TABLES` (a test checks
# they agree), as migrations 0012 and 0014 watch them on SQLite: of `registries` only
# the columns that are configuration (`storage_used_bytes` changes with every blob).
_CONFIG_TABLES = (
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
_CONTENT_TABLES = ("repositories", "tags", "manifests")


def _triggers() -> list[tuple[str, str, str, str]]:
    """(name, table, events, level) of every trigger; its function is named after its
    counter, the name's prefix."""
    every = "INSERT OR UPDATE OR DELETE"
    triggers = [
        ("config_registries_insert_delete", "registries", "INSERT OR DELETE", "ROW"),
        ("config_registries_update", "registries", f"UPDATE OF {_REGISTRY_COLUMNS}", "ROW"),
    ]
    triggers += [(f"config_{table}", table, every, "ROW") for table in _CONFIG_TABLES]
    triggers += [(f"content_{table}", table, every, "STATEMENT") for table in _CONTENT_TABLES]
    return triggers


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for counter in ("config_generation", "content_generation"):
        op.execute(
            f"CREATE FUNCTION bump_{counter}() RETURNS trigger LANGUAGE plpgsql AS $$"
            f" BEGIN UPDATE {counter} SET value = value + 1 WHERE id = 1; RETURN NULL; END $$"
        )
    for name, table, events, level in _triggers():
        counter = "config_generation" if name.startswith("config_") else "content_generation"
        op.execute(
            f"CREATE TRIGGER {name} AFTER {events} ON {table}"
            f" FOR EACH {level} EXECUTE FUNCTION bump_{counter}()"
        )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, table, _, _ in _triggers():
        op.execute(f"DROP TRIGGER {name} ON {table}")
    for counter in ("config_generation", "content_generation"):
        op.execute(f"DROP FUNCTION bump_{counter}()")
