"""Queries for encryption at rest: a registry's customer-managed key and its data keys,
which this module only ever sees wrapped.

Values go in and out plain; the rules live in `dockyard.encryption`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import insert, select, update

from dockyard.metadata import schema as t
from dockyard.metadata.store import Metadata, Transaction

_enc = t.registry_encryption
_keys = t.data_keys


@dataclass(frozen=True)
class EncryptionRow:
    registry_id: int
    key_identifier: str
    versioned_key_identifier: str
    identity: str | None
    enabled_at: datetime
    last_rotation_at: datetime | None


@dataclass(frozen=True)
class DataKeyRow:
    key_id: str
    wrapped: bytes
    wrapped_by: str
    created_at: datetime
    retired_at: datetime | None


def encryption_of(meta: Metadata, registry_id: int) -> EncryptionRow | None:
    with meta.connection() as conn:
        found = conn.execute(select(_enc).where(_enc.c.registry_id == registry_id)).first()
    return None if found is None else EncryptionRow(*found)


def encrypted_registries(meta: Metadata) -> dict[str, int]:
    """The names and ids of the registries whose blobs are encrypted."""
    query = select(t.registries.c.name, _enc.c.registry_id).join(
        t.registries, t.registries.c.id == _enc.c.registry_id
    )
    with meta.connection() as conn:
        return {name: registry_id for name, registry_id in conn.execute(query)}


def encryption_enabled_at(meta: Metadata) -> dict[int, datetime]:
    """When each encrypted registry's encryption was turned on, by registry id."""
    with meta.connection() as conn:
        return dict(conn.execute(select(_enc.c.registry_id, _enc.c.enabled_at)).all())


def data_keys_of(meta: Metadata, registry_id: int) -> list[DataKeyRow]:
    """The registry's data keys, oldest first: the last one encrypts new blobs."""
    query = (
        select(
            _keys.c.key_id,
            _keys.c.wrapped,
            _keys.c.wrapped_by,
            _keys.c.created_at,
            _keys.c.retired_at,
        )
        .where(_keys.c.registry_id == registry_id)
        .order_by(_keys.c.id)
    )
    with meta.connection() as conn:
        return [DataKeyRow(*row) for row in conn.execute(query)]


class EncryptionWrites:
    """Changes of a registry's keys inside one `Metadata.transaction()`."""

    def __init__(self, tx: Transaction) -> None:
        self._conn = tx.conn
        self._now = tx.now

    def enable(
        self, registry_id: int, key_identifier: str, versioned: str, identity: str | None
    ) -> None:
        self._conn.execute(
            insert(_enc).values(
                registry_id=registry_id,
                key_identifier=key_identifier,
                versioned_key_identifier=versioned,
                identity=identity,
                enabled_at=self._now,
            )
        )

    def change_key(
        self, registry_id: int, key_identifier: str, versioned: str, identity: str | None
    ) -> None:
        self._conn.execute(
            update(_enc)
            .where(_enc.c.registry_id == registry_id)
            .values(
                key_identifier=key_identifier,
                versioned_key_identifier=versioned,
                identity=identity,
                last_rotation_at=self._now,
            )
        )

    def add_data_key(self, registry_id: int, key_id: str, wrapped: bytes, wrapped_by: str) -> None:
        self._conn.execute(
            insert(_keys).values(
                registry_id=registry_id,
                key_id=key_id,
                wrapped=wrapped,
                wrapped_by=wrapped_by,
                created_at=self._now,
            )
        )

    def rewrap(self, registry_id: int, key_id: str, wrapped: bytes, wrapped_by: str) -> None:
        self._conn.execute(
            update(_keys)
            .where(_keys.c.registry_id == registry_id, _keys.c.key_id == key_id)
            .values(wrapped=wrapped, wrapped_by=wrapped_by)
        )

    def retire(self, registry_id: int, key_id: str) -> None:
        self._conn.execute(
            update(_keys)
            .where(_keys.c.registry_id == registry_id, _keys.c.key_id == key_id)
            .values(retired_at=self._now)
        )
