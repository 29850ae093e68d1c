"""Queries of the image lifecycle: each registry's retention and soft delete policies,
the untagged manifests the retention policy may delete, and what a purge looks at. The
rules (which manifests are due, what a purge keeps) are in `lifecycle.retention` and
`lifecycle.purge`.

"Dangling" here means what both rules need: a manifest with no tag, no parent index in
its repository, and no subject there (a referrer whose subject is gone, or never was);
such a manifest is reachable by digest only, and nothing a user pulls by tag needs it."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import Connection, and_, exists, func, or_, select, update

from dockyard.metadata import schema as t
from dockyard.metadata.attributes import lock_columns, locks_of
from dockyard.metadata.records import Locks
from dockyard.metadata.store import Metadata, Transaction

_reg, _r, _m, _g, _mr = t.registries, t.repositories, t.manifests, t.tags, t.manifest_references
_parent, _subject = _m.alias("parent"), _m.alias("subject")

_DANGLING = and_(
    ~exists().where(_g.c.repository_id == _m.c.repository_id, _g.c.digest == _m.c.digest),
    ~exists().where(
        _mr.c.digest == _m.c.digest,
        _parent.c.id == _mr.c.manifest_id,
        _parent.c.repository_id == _m.c.repository_id,
    ),
    or_(
        _m.c.subject_digest.is_(None),
        ~exists().where(
            _subject.c.repository_id == _m.c.repository_id,
            _subject.c.digest == _m.c.subject_digest,
        ),
    ),
)
_POLICY_COLUMNS = (
    _reg.c.retention_days,
    _reg.c.retention_enabled_at,
    _reg.c.soft_delete_days,
    _reg.c.soft_delete_enabled_at,
)


@dataclass(frozen=True)
class Policy:
    """One policy of a registry: on since `enabled_at` (None: off), and its days."""

    days: int
    enabled_at: datetime | None

    @property
    def enabled(self) -> bool:
        return self.enabled_at is not None


@dataclass(frozen=True)
class Policies:
    retention: Policy
    soft_delete: Policy


@dataclass(frozen=True)
class UntaggedManifest:
    repository: str
    digest: str
    untagged_at: datetime


@dataclass(frozen=True)
class InventoryTag:
    name: str
    digest: str
    updated_at: datetime
    locks: Locks


@dataclass(frozen=True)
class InventoryManifest:
    digest: str
    updated_at: datetime
    locks: Locks
    children: tuple[str, ...]  # the child manifests of an index
    subject: str | None


@dataclass(frozen=True)
class Inventory:
    """A repository as a purge sees it."""

    name: str
    locks: Locks
    tags: tuple[InventoryTag, ...]
    manifests: tuple[InventoryManifest, ...]


def _policies(conn: Connection, registry_id: int) -> Policies:
    row = conn.execute(select(*_POLICY_COLUMNS).where(_reg.c.id == registry_id)).one()
    return Policies(Policy(row[0], row[1]), Policy(row[2], row[3]))


def policies(meta: Metadata, registry_id: int) -> Policies:
    with meta.connection() as conn:
        return _policies(conn, registry_id)


def untagged_manifests(
    meta: Metadata, registry_id: int, since: datetime, until: datetime, limit: int
) -> list[UntaggedManifest]:
    """Dangling manifests untagged between `since` and `until` that no lock keeps,
    oldest first (the retention policy's candidates; each is checked again when it is
    deleted)."""
    query = (
        select(_r.c.name, _m.c.digest, _m.c.untagged_at)
        .select_from(_m.join(_r, _r.c.id == _m.c.repository_id))
        .where(
            _r.c.registry_id == registry_id,
            _m.c.untagged_at >= since,
            _m.c.untagged_at <= until,
            _r.c.write_enabled,
            _m.c.write_enabled,
            _m.c.delete_enabled,
            _DANGLING,
        )
        .order_by(_m.c.untagged_at, _m.c.id)
        .limit(limit)
    )
    with meta.connection() as conn:
        return [UntaggedManifest(*row) for row in conn.execute(query)]


def inventory(meta: Metadata, registry_id: int) -> list[Inventory]:
    """Every repository of the registry with its tags and manifests (three queries), for
    a purge's plan."""
    with meta.connection() as conn:
        repos = conn.execute(
            select(_r.c.id, _r.c.name, *lock_columns(_r))
            .where(_r.c.registry_id == registry_id)
            .order_by(_r.c.name)
        ).all()
        in_registry = _r.c.registry_id == registry_id
        tags: dict[int, list[InventoryTag]] = {}
        for row in conn.execute(
            select(_g.c.repository_id, _g.c.name, _g.c.digest, _g.c.updated_at, *lock_columns(_g))
            .select_from(_g.join(_r, _r.c.id == _g.c.repository_id))
            .where(in_registry)
            .order_by(_g.c.name)
        ):
            tags.setdefault(row[0], []).append(InventoryTag(*row[1:4], locks_of(row[4:])))
        children: dict[int, list[str]] = {}
        for manifest_id, digest in conn.execute(
            select(_mr.c.manifest_id, _mr.c.digest)
            .select_from(
                _mr.join(_m, _m.c.id == _mr.c.manifest_id).join(_r, _r.c.id == _m.c.repository_id)
            )
            .where(in_registry, _mr.c.is_manifest == 1)
        ):
            children.setdefault(manifest_id, []).append(digest)
        manifests: dict[int, list[InventoryManifest]] = {}
        for row in conn.execute(
            select(
                _m.c.repository_id,
                _m.c.id,
                _m.c.digest,
                func.coalesce(_m.c.updated_at, _m.c.created_at),
                _m.c.subject_digest,
                *lock_columns(_m),
            )
            .select_from(_m.join(_r, _r.c.id == _m.c.repository_id))
            .where(in_registry)
            .order_by(_m.c.digest)
        ):
            manifests.setdefault(row[0], []).append(
                InventoryManifest(
                    digest=row[2],
                    updated_at=row[3],
                    locks=locks_of(row[5:]),
                    children=tuple(sorted(children.get(row[1], ()))),
                    subject=row[4],
                )
            )
    return [
        Inventory(name, locks_of(flags), tuple(tags.get(id_, ())), tuple(manifests.get(id_, ())))
        for id_, name, *flags in repos
    ]


class LifecycleWrites:
    """Policy reads and changes, and the checks a delete by retention or purge makes,
    inside one write transaction."""

    def __init__(self, tx: Transaction) -> None:
        self._conn = tx.conn

    def policies(self, registry_id: int) -> Policies:
        return _policies(self._conn, registry_id)

    def set_policies(self, registry_id: int, policies: Policies) -> None:
        self._conn.execute(
            update(_reg)
            .where(_reg.c.id == registry_id)
            .values(
                retention_days=policies.retention.days,
                retention_enabled_at=policies.retention.enabled_at,
                soft_delete_days=policies.soft_delete.days,
                soft_delete_enabled_at=policies.soft_delete.enabled_at,
            )
        )

    def dangling_since(self, repository_id: int, digest: str) -> tuple[bool, datetime | None]:
        """(whether the manifest is dangling now, its `untagged_at`); (False, None) if the
        repository has no such manifest."""
        row = self._conn.execute(
            select(_DANGLING, _m.c.untagged_at).where(
                _m.c.repository_id == repository_id, _m.c.digest == digest
            )
        ).first()
        return (False, None) if row is None else (bool(row[0]), row[1])

    def has_manifests(self, repository_id: int) -> bool:
        return (
            self._conn.execute(
                select(_m.c.id).where(_m.c.repository_id == repository_id).limit(1)
            ).first()
            is not None
        )
