"""Queries of geo-replication (`replications`): a registry's replications in other
regions and the status the last attempt to reach each found. What they mean is
`dockyard.replication`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import orjson
from sqlalchemy import delete, insert, select, update

from dockyard.metadata import schema as t
from dockyard.metadata.store import Metadata, Transaction

_r = t.replications


@dataclass(frozen=True)
class ReplicationRecord:
    registry_id: int
    name: str
    region: str
    tags: dict[str, str]
    region_endpoint_enabled: bool
    zone_redundancy: str
    status: str
    message: str
    status_at: datetime
    created_at: datetime


_REPLICATION = select(
    _r.c.registry_id,
    _r.c.name,
    _r.c.region,
    _r.c.tags,
    _r.c.region_endpoint_enabled,
    _r.c.zone_redundancy,
    _r.c.status,
    _r.c.message,
    _r.c.status_at,
    _r.c.created_at,
)


def _record(row: tuple) -> ReplicationRecord:
    registry_id, name, region, tags, *rest = row
    return ReplicationRecord(registry_id, name, region, orjson.loads(tags), *rest)


def replications(meta: Metadata, registry_id: int) -> list[ReplicationRecord]:
    """The registry's replications by name."""
    with meta.connection() as conn:
        rows = conn.execute(
            _REPLICATION.where(_r.c.registry_id == registry_id).order_by(_r.c.name)
        ).all()
    return [_record(row) for row in rows]


def all_replications(meta: Metadata) -> list[ReplicationRecord]:
    """Every registry's replications: what the replication engine sends to."""
    with meta.connection() as conn:
        rows = conn.execute(_REPLICATION.order_by(_r.c.registry_id, _r.c.name)).all()
    return [_record(row) for row in rows]


class ReplicationWrites:
    def __init__(self, tx: Transaction) -> None:
        self._conn = tx.conn
        self._now = tx.now

    def of_registry(self, registry_id: int) -> list[ReplicationRecord]:
        """The registry's replications, read in the transaction."""
        rows = self._conn.execute(_REPLICATION.where(_r.c.registry_id == registry_id)).all()
        return [_record(row) for row in rows]

    def add(
        self,
        registry_id: int,
        name: str,
        region: str,
        tags: dict[str, str],
        region_endpoint_enabled: bool,
        zone_redundancy: str,
        status: str,
        message: str,
    ) -> None:
        self._conn.execute(
            insert(_r).values(
                registry_id=registry_id,
                name=name,
                region=region,
                tags=orjson.dumps(tags).decode(),
                region_endpoint_enabled=region_endpoint_enabled,
                zone_redundancy=zone_redundancy,
                status=status,
                message=message,
                status_at=self._now,
                created_at=self._now,
            )
        )

    def change(
        self,
        registry_id: int,
        name: str,
        tags: dict[str, str] | None,
        region_endpoint_enabled: bool | None,
    ) -> None:
        values: dict[str, object] = {}
        if tags is not None:
            values["tags"] = orjson.dumps(tags).decode()
        if region_endpoint_enabled is not None:
            values["region_endpoint_enabled"] = region_endpoint_enabled
        if values:
            self._conn.execute(
                update(_r).where(_r.c.registry_id == registry_id, _r.c.name == name).values(values)
            )

    def set_status(self, registry_id: int, name: str, status: str, message: str) -> None:
        self._conn.execute(
            update(_r)
            .where(_r.c.registry_id == registry_id, _r.c.name == name)
            .values(status=status, message=message, status_at=self._now)
        )

    def remove(self, registry_id: int, name: str) -> bool:
        done = self._conn.execute(
            delete(_r).where(_r.c.registry_id == registry_id, _r.c.name == name)
        )
        return done.rowcount > 0
