"""Queries for the management API's view of registries: every setting a registry resource
shows in one read, its placement (subscription, resource group, location, tags), and
removing a registry with everything that hangs off it.

Values go in and out plain; the rules live in `dockyard.management.registry_resources`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import delete, select, update

from dockyard.metadata import schema as t
from dockyard.metadata.records import RegistryRecord
from dockyard.metadata.store import Metadata, Transaction

_reg = t.registries
_COLUMNS = (
    _reg.c.id,
    _reg.c.name,
    _reg.c.login_server,
    _reg.c.created_at,
    _reg.c.subscription_id,
    _reg.c.resource_group,
    _reg.c.location,
    _reg.c.tags,
    _reg.c.sku,
    _reg.c.admin_user_enabled,
    _reg.c.anonymous_pull_enabled,
    _reg.c.public_network_access,
    _reg.c.network_default_action,
)


@dataclass(frozen=True)
class RegistryRow:
    """A registry as the management API reads it. `subscription_id` and
    `resource_group` are None for a registry placed by default (the default registry)."""

    record: RegistryRecord
    created_at: datetime
    subscription_id: str | None
    resource_group: str | None
    location: str | None
    tags: dict[str, str]
    sku: str
    admin_user_enabled: bool
    anonymous_pull_enabled: bool
    public_network_access: bool
    network_default_action: str


def _row(values: tuple) -> RegistryRow:
    (id_, name, login, created, sub, rg, location, tags, sku, admin, anon, public, action) = values
    return RegistryRow(
        RegistryRecord(id_, name, login),
        created,
        sub,
        rg,
        location,
        orjson.loads(tags) if tags else {},
        sku,
        bool(admin),
        bool(anon),
        bool(public),
        action,
    )


def registry_rows(meta: Metadata, name: str | None = None) -> list[RegistryRow]:
    """Every registry (by name), or the one named `name` (names are lower case)."""
    query = select(*_COLUMNS).order_by(_reg.c.name)
    if name is not None:
        query = query.where(_reg.c.name == name.lower())
    with meta.connection() as conn:
        return [_row(tuple(values)) for values in conn.execute(query)]


class RegistryResourceWrites:
    """Placement changes and registry removal inside one `Metadata.transaction()`."""

    def __init__(self, tx: Transaction) -> None:
        self._conn = tx.conn

    def place(
        self,
        registry_id: int,
        subscription_id: str | None,
        resource_group: str | None,
        location: str | None,
    ) -> None:
        self._conn.execute(
            update(_reg)
            .where(_reg.c.id == registry_id)
            .values(
                subscription_id=subscription_id, resource_group=resource_group, location=location
            )
        )

    def set_tags(self, registry_id: int, tags: dict[str, str]) -> None:
        self._conn.execute(
            update(_reg)
            .where(_reg.c.id == registry_id)
            .values(tags=orjson.dumps(tags).decode() if tags else None)
        )

    def delete_registry(self, registry_id: int) -> list[str]:
        """Remove the registry's row, and with it (foreign keys cascade) every row of its
        repositories, blobs, access and policies. Returns the digests whose bytes its
        store held, for the caller to delete once this commits."""
        b = t.blobs
        digests = list(self._conn.execute(select(b.c.digest).where(b.c.registry_id == registry_id)))
        # Tokens first: their scope maps refuse to go while a token names them.
        self._conn.execute(delete(t.tokens).where(t.tokens.c.registry_id == registry_id))
        self._conn.execute(delete(_reg).where(_reg.c.id == registry_id))
        return [digest for (digest,) in digests]
