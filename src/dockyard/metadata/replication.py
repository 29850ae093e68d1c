"""Queries of geo-replication (`replications`): a registry's replications in other
regions and the status the last attempt to reach each found. What they mean is
`dockyard.replication`."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy import and_, delete, func, insert, select, update
from sqlalchemy.engine import Connection

from dockyard.metadata import schema as t
from dockyard.metadata.store import Metadata, Transaction

_r = t.replications
_s = t.tag_stamps
_g, _p, _e, _d = t.tags, t.repositories, t.events, t.event_deliveries
_m = t.manifests


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
    last_error: str | None
    last_error_at: datetime | None
    created_at: datetime


@dataclass(frozen=True)
class Backlog:
    """A registry's changes the replication consumer has not delivered yet."""

    depth: int
    oldest: datetime | None  # when the oldest of them was made


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
    _r.c.last_error,
    _r.c.last_error_at,
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


def backlogs(meta: Metadata, consumer: str, actions: frozenset[str]) -> dict[int, Backlog]:
    """Per registry, the events of `actions` that `consumer` has not delivered."""
    query = (
        select(_e.c.registry_id, func.count(), func.min(_e.c.created_at))
        .select_from(_e.outerjoin(_d, and_(_d.c.event_id == _e.c.id, _d.c.consumer == consumer)))
        .where(_e.c.action.in_(sorted(actions)), _d.c.delivered_at.is_(None))
        .group_by(_e.c.registry_id)
    )
    with meta.connection() as conn:
        return {
            registry_id: Backlog(depth, oldest)
            for registry_id, depth, oldest in conn.execute(query)
        }


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

    def set_status(
        self, registry_id: int, name: str, status: str, message: str, failed: bool = False
    ) -> None:
        """The status now; `failed`: `message` is also the last error."""
        values: dict[str, object] = {"status": status, "message": message, "status_at": self._now}
        if failed:
            values |= {"last_error": message, "last_error_at": self._now}
        self._conn.execute(
            update(_r).where(_r.c.registry_id == registry_id, _r.c.name == name).values(values)
        )

    def remove(self, registry_id: int, name: str) -> bool:
        done = self._conn.execute(
            delete(_r).where(_r.c.registry_id == registry_id, _r.c.name == name)
        )
        return done.rowcount > 0


@dataclass(frozen=True)
class TagStampRecord:
    wall: int
    region: str
    digest: str | None  # None: the write was a delete
    observed_at: datetime | None  # the tag's updated_at right after it was applied here


@dataclass(frozen=True)
class TagRow:
    digest: str
    updated_at: datetime


def tag_row(conn: Connection, registry_id: int, repository: str, tag: str) -> TagRow | None:
    """The tag as this region has it now."""
    row = conn.execute(
        select(_g.c.digest, _g.c.updated_at)
        .join(_p, _p.c.id == _g.c.repository_id)
        .where(_p.c.registry_id == registry_id, _p.c.name == repository, _g.c.name == tag)
    ).first()
    return None if row is None else TagRow(*row)


def tags_on(conn: Connection, registry_id: int, repository: str, digest: str) -> list[str]:
    """The tags that name `digest` in the repository."""
    return list(
        conn.execute(
            select(_g.c.name)
            .join(_p, _p.c.id == _g.c.repository_id)
            .where(_p.c.registry_id == registry_id, _p.c.name == repository, _g.c.digest == digest)
        ).scalars()
    )


def last_local_write(
    conn: Connection,
    registry_id: int,
    repository: str,
    tag: str,
    since: datetime | None,
    peer_prefix: str,
) -> datetime | None:
    """When this region's clients last moved `tag` (a push or a restore naming it), after
    `since`: the time of the newest `push` event with the tag whose caller is no peer
    region (`peer_prefix`). A tag's `updated_at` cannot tell: a change of its locks
    moves it too."""
    query = (
        select(_e.c.payload, _e.c.created_at)
        .where(
            _e.c.registry_id == registry_id,
            _e.c.repository == repository,
            _e.c.action == "push",
        )
        .order_by(_e.c.id.desc())
    )
    if since is not None:
        query = query.where(_e.c.created_at > since)
    for payload, created_at in conn.execute(query):
        body = orjson.loads(payload)
        caller = (body.get("caller") or {}).get("identity") or ""
        if body.get("tag") == tag and not caller.startswith(peer_prefix):
            return created_at
    return None


def last_local_delete(
    conn: Connection, registry_id: int, repository: str, tag: str, since: datetime | None
) -> datetime | None:
    """When this region last deleted `tag` (an untag, or the delete of its manifest or
    repository), after `since`: the time of the newest outbox event that says so."""
    query = (
        select(_e.c.action, _e.c.payload, _e.c.created_at)
        .where(
            _e.c.registry_id == registry_id,
            _e.c.repository == repository,
            _e.c.action.in_(("untag", "delete")),
        )
        .order_by(_e.c.id.desc())
    )
    if since is not None:
        query = query.where(_e.c.created_at > since)
    for action, payload, created_at in conn.execute(query):
        body = orjson.loads(payload)
        named = (
            [body.get("tag")] if action == "untag" else body.get("tags", body.get("tagsDeleted"))
        )
        if tag in (named or ()):
            return created_at
    return None


class TagStampWrites:
    def __init__(self, tx: Transaction) -> None:
        self.conn = tx.conn

    def get(self, registry_id: int, repository: str, tag: str) -> TagStampRecord | None:
        row = self.conn.execute(
            select(_s.c.wall, _s.c.region, _s.c.digest, _s.c.observed_at).where(
                _s.c.registry_id == registry_id, _s.c.repository == repository, _s.c.tag == tag
            )
        ).first()
        return None if row is None else TagStampRecord(*row)

    def put(self, registry_id: int, repository: str, tag: str, record: TagStampRecord) -> None:
        key = (_s.c.registry_id == registry_id, _s.c.repository == repository, _s.c.tag == tag)
        values = {
            "wall": record.wall,
            "region": record.region,
            "digest": record.digest,
            "observed_at": record.observed_at,
        }
        if self.conn.execute(update(_s).where(*key).values(values)).rowcount == 0:
            self.conn.execute(
                insert(_s).values(registry_id=registry_id, repository=repository, tag=tag, **values)
            )


def repository_names(meta: Metadata, registry_id: int) -> list[str]:
    with meta.connection() as conn:
        return list(
            conn.execute(
                select(_p.c.name).where(_p.c.registry_id == registry_id).order_by(_p.c.name)
            ).scalars()
        )


def manifest_digests(meta: Metadata, registry_id: int, repository: str) -> list[str]:
    """The repository's manifests, oldest first."""
    with meta.connection() as conn:
        return manifest_digests_in(conn, registry_id, repository)


def manifest_digests_in(conn: Connection, registry_id: int, repository: str) -> list[str]:
    return list(
        conn.execute(
            select(_m.c.digest)
            .join(_p, _p.c.id == _m.c.repository_id)
            .where(_p.c.registry_id == registry_id, _p.c.name == repository)
            .order_by(_m.c.id)
        ).scalars()
    )


def tag_names(meta: Metadata, registry_id: int, repository: str) -> list[str]:
    with meta.connection() as conn:
        return list(
            conn.execute(
                select(_g.c.name)
                .join(_p, _p.c.id == _g.c.repository_id)
                .where(_p.c.registry_id == registry_id, _p.c.name == repository)
                .order_by(_g.c.name)
            ).scalars()
        )


_a = t.attribute_stamps
_dm, _dg = t.deleted_manifests, t.deleted_tags


class AttributeStampWrites:
    """The stamps of the attributes (locks, quarantine states) peers wrote here."""

    def __init__(self, tx: Transaction) -> None:
        self.conn = tx.conn

    def get(
        self, registry_id: int, repository: str, target: str, attribute: str
    ) -> tuple[int, str] | None:
        row = self.conn.execute(
            select(_a.c.wall, _a.c.region).where(
                *self._key(registry_id, repository, target, attribute)
            )
        ).first()
        return None if row is None else (row.wall, row.region)

    def put(
        self, registry_id: int, repository: str, target: str, attribute: str, wall: int, region: str
    ) -> None:
        key = self._key(registry_id, repository, target, attribute)
        values = {"wall": wall, "region": region}
        if self.conn.execute(update(_a).where(*key).values(values)).rowcount == 0:
            self.conn.execute(
                insert(_a).values(
                    registry_id=registry_id,
                    repository=repository,
                    target=target,
                    attribute=attribute,
                    **values,
                )
            )

    @staticmethod
    def _key(registry_id: int, repository: str, target: str, attribute: str) -> tuple[Any, ...]:
        return (
            _a.c.registry_id == registry_id,
            _a.c.repository == repository,
            _a.c.target == target,
            _a.c.attribute == attribute,
        )


def last_local_lock(
    conn: Connection,
    registry_id: int,
    repository: str,
    tag: str | None,
    digest: str | None,
    attribute: str,
) -> datetime | None:
    """When this region's clients last changed `attribute` (ACR's name) of the repository
    (`tag` and `digest` None), or of its tag or manifest: the time of the newest outbox
    event that says so (a peer's lock changes are applied without one)."""
    query = (
        select(_e.c.payload, _e.c.created_at)
        .where(
            _e.c.registry_id == registry_id,
            _e.c.repository == repository,
            _e.c.action == "lock",
        )
        .order_by(_e.c.id.desc())
    )
    for payload, created_at in conn.execute(query):
        body = orjson.loads(payload)
        if (
            body.get("tag") == tag
            and body.get("digest") == digest
            and attribute in body.get("changeableAttributes", {})
        ):
            return created_at
    return None


def last_local_quarantine(
    conn: Connection, registry_id: int, repository: str, digest: str, peer_prefix: str
) -> datetime | None:
    """When this region's quarantine writers last set the manifest's state: the newest
    `quarantine` event for it whose caller is no peer region (`peer_prefix`)."""
    query = (
        select(_e.c.payload, _e.c.created_at)
        .where(
            _e.c.registry_id == registry_id,
            _e.c.repository == repository,
            _e.c.action == "quarantine",
        )
        .order_by(_e.c.id.desc())
    )
    for payload, created_at in conn.execute(query):
        body = orjson.loads(payload)
        caller = (body.get("caller") or {}).get("identity") or ""
        if body.get("digest") == digest and not caller.startswith(peer_prefix):
            return created_at
    return None


def in_recycle_bin(
    meta: Metadata, registry_id: int, repository: str, digest: str, tag: str | None = None
) -> bool:
    """Whether the recycle bin holds the manifest (or, with `tag`, that tag of it): a
    delete's copy, sent to peers with the delete so they bin it too."""
    table = _dm if tag is None else _dg
    where = [table.c.registry_id == registry_id, table.c.repository == repository]
    where.append(table.c.digest == digest)
    if tag is not None:
        where.append(_dg.c.name == tag)
    with meta.connection() as conn:
        return conn.execute(select(table.c.id).where(*where)).first() is not None
