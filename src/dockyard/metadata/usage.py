"""Queries of a registry's tier and of what it uses: `registries.sku`,
`storage_quota_bytes`, `storage_used_bytes` (moved by `Transaction.add_blob` and
`GarbageWrites.delete_blobs` in the transactions that change blob rows), its history
(`storage_days`) and the counts of what tiers limit. The limits and the rules that
apply them are in `tiers.tiers`, `tiers.usage` and `tiers.quotas`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date

from sqlalchemy import (
    Connection,
    Table,
    bindparam,
    delete,
    exists,
    false,
    func,
    literal,
    or_,
    select,
    true,
    update,
)
from sqlalchemy.dialects.postgresql import insert as postgresql_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import NoResultFound

from dockyard.metadata import schema as t
from dockyard.metadata.prepared import Prepared
from dockyard.metadata.store import Metadata, Transaction

_reg = t.registries
_days = t.storage_days

# What the tiers limit by count, each a table with one row per item of a registry. The
# replications table joins here when it exists; until then only the home region counts.
_COUNTED: dict[str, Table] = {
    "tokens": t.tokens,
    "scope_maps": t.scope_maps,
    "ip_rules": t.network_rules,
    "webhooks": t.webhooks,
}
_COUNTS = {
    name: select(func.count()).where(table.c.registry_id == bindparam("registry_id"))
    for name, table in _COUNTED.items()
}
_STORAGE = Prepared(
    select(_reg.c.sku, _reg.c.storage_quota_bytes, _reg.c.storage_used_bytes).where(
        _reg.c.id == bindparam("registry_id")
    )
)
_TIER = select(
    _reg.c.sku,
    _reg.c.storage_quota_bytes,
    _reg.c.storage_used_bytes,
    _reg.c.anonymous_pull_enabled,
    or_(_reg.c.public_network_access == false(), _reg.c.network_default_action != "Allow"),
    _reg.c.retention_enabled_at.is_not(None),
    exists().where(t.registry_encryption.c.registry_id == _reg.c.id),
    exists().where(t.replications.c.registry_id == _reg.c.id),
).where(_reg.c.id == bindparam("registry_id"))
_SKUS = select(_reg.c.id, _reg.c.sku)
# Databases without SQLite's cheap change counter: how stale a node's copy of the tiers
# may get (the rate limits read them on every request).
SKU_TTL_SECONDS = 2.0


@dataclass(frozen=True)
class StorageRecord:
    sku: str
    quota_bytes: int | None  # the registry's own quota; None: its tier's limit
    used_bytes: int


@dataclass(frozen=True)
class TierRecord:
    """A registry's tier, storage and the tier-limited features it uses."""

    storage: StorageRecord
    anonymous_pull: bool
    network_rules: bool  # public access off, or default action Deny
    retention: bool
    encryption: bool
    geo_replication: bool  # replications in other regions


def _storage(conn: Connection, registry_id: int) -> StorageRecord:
    row = _STORAGE.first(conn, registry_id=registry_id)
    if row is None:
        raise NoResultFound(f"no registry {registry_id}")
    return StorageRecord(*row)


def _tier(conn: Connection, registry_id: int) -> TierRecord:
    sku, quota, used, anonymous, network, retention, encryption, replicated = conn.execute(
        _TIER, {"registry_id": registry_id}
    ).one()
    return TierRecord(
        StorageRecord(sku, quota, used),
        bool(anonymous),
        bool(network),
        bool(retention),
        bool(encryption),
        bool(replicated),
    )


def _counts(conn: Connection, registry_id: int) -> dict[str, int]:
    return {
        name: conn.execute(query, {"registry_id": registry_id}).scalar_one()
        for name, query in _COUNTS.items()
    }


def _load_skus(conn: Connection) -> dict[int, str]:
    return {registry_id: sku for registry_id, sku in conn.execute(_SKUS)}


class UsageStore:
    """Reads through the shared `Metadata` connection; writes are `UsageWrites`."""

    def __init__(self, meta: Metadata, monotonic: Callable[[], float] = time.monotonic) -> None:
        self._meta = meta
        self._skus = meta.kept_read(("skus",), _load_skus, SKU_TTL_SECONDS, monotonic)

    def storage(self, registry_id: int) -> StorageRecord:
        """The storage use and quota now (one primary-key read, never cached)."""
        with self._meta.connection() as conn:
            return _storage(conn, registry_id)

    def tier(self, registry_id: int) -> TierRecord:
        with self._meta.connection() as conn:
            return _tier(conn, registry_id)

    def counts(self, registry_id: int) -> dict[str, int]:
        with self._meta.connection() as conn:
            return _counts(conn, registry_id)

    def skus(self) -> dict[int, str]:
        """Every registry's tier, read on every request by the rate limits: kept until
        the database changes (SQLite) or for `SKU_TTL_SECONDS`."""
        return self._skus()


def storage_days(meta: Metadata, registry_id: int, since: date) -> dict[date, int]:
    """The registry's storage in use at the end of each recorded day from `since` on."""
    query = select(_days.c.day, _days.c.used_bytes).where(
        _days.c.registry_id == registry_id, _days.c.day >= since
    )
    with meta.connection() as conn:
        return {day: int(used) for day, used in conn.execute(query)}


class UsageWrites:
    """Reads and changes inside one `Metadata.transaction()`, under the writers' lock:
    what they find cannot change before the transaction commits."""

    def __init__(self, tx: Transaction) -> None:
        self._conn = tx.conn

    def storage(self, registry_id: int) -> StorageRecord:
        return _storage(self._conn, registry_id)

    def tier(self, registry_id: int) -> TierRecord:
        return _tier(self._conn, registry_id)

    def counts(self, registry_id: int) -> dict[str, int]:
        return _counts(self._conn, registry_id)

    def count(self, registry_id: int, counted: str) -> int:
        """How many of `counted` (a key of the counts) the registry has."""
        return self._conn.execute(_COUNTS[counted], {"registry_id": registry_id}).scalar_one()

    def set_tier(self, registry_id: int, sku: str, quota_bytes: int | None) -> None:
        self._conn.execute(
            update(_reg)
            .where(_reg.c.id == registry_id)
            .values(sku=sku, storage_quota_bytes=quota_bytes)
        )

    def record_storage_day(self, day: date, keep_since: date) -> None:
        """Every registry's storage in use now, as `day`'s (a later call the same day
        replaces it: the last is the day's end); days before `keep_since` go."""
        dialect_insert = (
            postgresql_insert if self._conn.dialect.name == "postgresql" else sqlite_insert
        )
        statement = dialect_insert(_days).from_select(
            ["registry_id", "day", "used_bytes"],
            # SQLite reads ON CONFLICT after a SELECT without WHERE as the join's
            select(_reg.c.id, literal(day, _days.c.day.type), _reg.c.storage_used_bytes).where(
                true()
            ),
        )
        self._conn.execute(
            statement.on_conflict_do_update(
                index_elements=[_days.c.registry_id, _days.c.day],
                set_={"used_bytes": statement.excluded.used_bytes},
            )
        )
        self._conn.execute(delete(_days).where(_days.c.day < keep_since))
