"""Queries for ACR's `/acr/v1` view of a registry: repository, tag and manifest
attributes, their listings (by name or by time), and the locks (changeable attributes)
that core checks inside its write transactions.

Values go in and out plain; which operation a lock refuses is decided in `core.locks`.
The hot manifest reads with their read flags stay in `store.py`."""

from __future__ import annotations

import enum
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, Select, and_, bindparam, func, or_, select, update

from dockyard.metadata import schema as t
from dockyard.metadata.prepared import Prepared
from dockyard.metadata.records import Locks
from dockyard.metadata.store import Metadata, Transaction

_r, _g, _m, _mr = t.repositories, t.tags, t.manifests, t.manifest_references
LOCK_NAMES = ("write_enabled", "delete_enabled", "read_enabled", "list_enabled")
# The artifact types of the referrers that make a manifest `signed` in `/acr/v1`
# (ACR's meaning: a signature is present, verified or not): Notation's (a legacy one's
# config media type is its artifact type, `core.manifest_formats`), cosign's referrers
# mode and its Sigstore bundles. cosign's tag scheme (`sha256-<hex>.sig`) counts too.
# The signing feature recognises the same (`signing.media_types`).
SIGNATURE_ARTIFACT_TYPES = (
    "application/vnd.cncf.notary.signature",
    "application/vnd.dev.cosign.artifact.sig.v1+json",
    "application/vnd.dev.sigstore.bundle.v0.3+json",
)


class Order(enum.Enum):
    """How a listing is sorted: by name (digest), or by last update time."""

    NAME = enum.auto()
    TIME_ASC = enum.auto()
    TIME_DESC = enum.auto()


@dataclass(frozen=True)
class RepositoryAttributes:
    name: str
    created_at: datetime
    updated_at: datetime
    manifest_count: int
    tag_count: int
    locks: Locks


@dataclass(frozen=True)
class TagAttributes:
    name: str
    digest: str
    created_at: datetime
    updated_at: datetime
    locks: Locks
    signed: bool = False


@dataclass(frozen=True)
class ChildManifest:
    """An index's entry, with the platform its manifest row recorded (None if absent)."""

    digest: str
    architecture: str | None
    os: str | None


@dataclass(frozen=True)
class ManifestAttributes:
    digest: str
    media_type: str
    config_media_type: str | None
    architecture: str | None
    os: str | None
    image_size: int
    created_at: datetime
    updated_at: datetime
    locks: Locks
    tags: tuple[str, ...]  # listable tags on it, by name
    references: tuple[ChildManifest, ...]  # an index's children, by digest
    signed: bool = False


@dataclass(frozen=True)
class RepositoryLocks:
    id: int
    locks: Locks


@dataclass(frozen=True)
class ContentLocks:
    """Locks of manifests and of the tags on them, for checks before a delete."""

    tags: dict[str, Locks]
    manifests: dict[str, Locks]


def lock_columns(table: Any) -> list[Any]:
    """The lock flags of a repository, tag or manifest table, in `Locks` order (for every
    query that reads locks: these and `metadata/lifecycle.py`'s)."""
    return [table.c[name] for name in LOCK_NAMES]


def locks_of(values: Sequence[Any]) -> Locks:
    """`Locks` from the values of `lock_columns` in a row."""
    return Locks(*(bool(v) for v in values))


# Built once: every push asks it first (a statement built per call costs more to compile
# than SQLite takes to answer it).
_REPOSITORY_LOCKS = Prepared(
    select(_r.c.id, *lock_columns(_r)).where(
        _r.c.registry_id == bindparam("registry_id"), _r.c.name == bindparam("repo")
    )
)


def _signed(repository_id: Any, digest: Any) -> Any:
    """Whether a signature of `digest` is in the repository: a referrer of a signature's
    artifact type (on the subject index), or cosign's `sha256-<hex>.sig` tag."""
    signature, signature_tag = _m.alias("signature"), _g.alias("signature_tag")
    by_referrer = (
        select(signature.c.id)
        .where(
            signature.c.repository_id == repository_id,
            signature.c.subject_digest == digest,
            signature.c.artifact_type.in_(SIGNATURE_ARTIFACT_TYPES),
        )
        .exists()
    )
    by_tag = (
        select(signature_tag.c.name)
        .where(
            signature_tag.c.repository_id == repository_id,
            signature_tag.c.name == func.replace(digest, ":", "-") + ".sig",
        )
        .exists()
    )
    return or_(by_referrer, by_tag)


_TAG_COLUMNS = (
    _g.c.name,
    _g.c.digest,
    _g.c.created_at,
    _g.c.updated_at,
    *lock_columns(_g),
    _signed(_g.c.repository_id, _g.c.digest),
)
# Manifests pushed before attributes were recorded have no updated_at.
_MANIFEST_TIME = func.coalesce(_m.c.updated_at, _m.c.created_at)
_MANIFEST_COLUMNS = (
    _m.c.id,
    _m.c.digest,
    _m.c.media_type,
    _m.c.config_media_type,
    _m.c.architecture,
    _m.c.os,
    _m.c.image_size,
    _m.c.created_at,
    _MANIFEST_TIME,
    *lock_columns(_m),
    _signed(_m.c.repository_id, _m.c.digest),
)


def _in_repository(registry_id: int, repo: str) -> Any:
    return and_(_r.c.registry_id == registry_id, _r.c.name == repo)


def _tag(row: Sequence[Any]) -> TagAttributes:
    return TagAttributes(*row[:4], locks_of(row[4:8]), signed=bool(row[8]))


def _keyset(
    query: Select, key: Any, time: Any, order: Order, last: str | None, last_time: Any
) -> Select:
    """Order `query` and start it after the row whose key is `last`: by key alone, or by
    (time, key), `last_time` being that row's time (a scalar subquery). If `last` names
    no row, a time-ordered page is empty."""
    if order is Order.NAME:
        if last:
            query = query.where(key > last)
        return query.order_by(key)
    if last:
        after = time < last_time if order is Order.TIME_DESC else time > last_time
        query = query.where(or_(after, and_(time == last_time, key > last)))
    return query.order_by(time.desc() if order is Order.TIME_DESC else time, key)


class Attributes:
    """Reads outside transactions, on the thread's connection of `Metadata`."""

    def __init__(self, meta: Metadata) -> None:
        self._meta = meta

    def repository_locks(self, registry_id: int, repo: str) -> RepositoryLocks | None:
        with self._meta.connection() as conn:
            return _repository_locks(conn, registry_id, repo)

    def repository(self, registry_id: int, repo: str) -> RepositoryAttributes | None:
        manifests = select(func.count()).where(_m.c.repository_id == _r.c.id).scalar_subquery()
        tags = select(func.count()).where(_g.c.repository_id == _r.c.id).scalar_subquery()
        query = select(
            _r.c.name, _r.c.created_at, _r.c.updated_at, manifests, tags, *lock_columns(_r)
        ).where(_in_repository(registry_id, repo))
        with self._meta.connection() as conn:
            row = conn.execute(query).first()
        return None if row is None else RepositoryAttributes(*row[:5], locks_of(row[5:]))

    def tag(self, registry_id: int, repo: str, tag: str) -> TagAttributes | None:
        query = (
            select(*_TAG_COLUMNS)
            .select_from(_r.join(_g, _g.c.repository_id == _r.c.id))
            .where(_in_repository(registry_id, repo), _g.c.name == tag)
        )
        with self._meta.connection() as conn:
            row = conn.execute(query).first()
        return None if row is None else _tag(row)

    def tags(
        self,
        registry_id: int,
        repo: str,
        *,
        last: str | None,
        n: int,
        order: Order = Order.NAME,
        digest: str | None = None,
    ) -> list[TagAttributes] | None:
        """Listable tags (only those on `digest`, if given), or None if the repository
        does not exist."""
        query = (
            select(*_TAG_COLUMNS)
            .select_from(_r.join(_g, _g.c.repository_id == _r.c.id))
            .where(_in_repository(registry_id, repo), _g.c.list_enabled)
        )
        if digest is not None:
            query = query.where(_g.c.digest == digest)
        before = _g.alias()
        last_time = (
            select(before.c.updated_at)
            .where(before.c.repository_id == _r.c.id, before.c.name == last)
            .scalar_subquery()
        )
        query = _keyset(query, _g.c.name, _g.c.updated_at, order, last, last_time).limit(n)
        with self._meta.connection() as conn:
            rows = conn.execute(query).all()
            if not rows and _repository_locks(conn, registry_id, repo) is None:
                return None
        return [_tag(row) for row in rows]

    def manifest(self, registry_id: int, repo: str, digest: str) -> ManifestAttributes | None:
        query = (
            select(*_MANIFEST_COLUMNS)
            .select_from(_r.join(_m, _m.c.repository_id == _r.c.id))
            .where(_in_repository(registry_id, repo), _m.c.digest == digest)
        )
        with self._meta.connection() as conn:
            found = _with_tags_and_references(conn, conn.execute(query).all())
        return found[0] if found else None

    def manifests(
        self, registry_id: int, repo: str, *, last: str | None, n: int, order: Order = Order.NAME
    ) -> list[ManifestAttributes] | None:
        """Listable manifests, or None if the repository does not exist."""
        query = (
            select(*_MANIFEST_COLUMNS)
            .select_from(_r.join(_m, _m.c.repository_id == _r.c.id))
            .where(_in_repository(registry_id, repo), _m.c.list_enabled)
        )
        before = _m.alias()
        last_time = (
            select(func.coalesce(before.c.updated_at, before.c.created_at))
            .where(before.c.repository_id == _r.c.id, before.c.digest == last)
            .scalar_subquery()
        )
        query = _keyset(query, _m.c.digest, _MANIFEST_TIME, order, last, last_time).limit(n)
        with self._meta.connection() as conn:
            rows = conn.execute(query).all()
            if not rows and _repository_locks(conn, registry_id, repo) is None:
                return None
            return _with_tags_and_references(conn, rows)


def _repository_locks(conn: Connection, registry_id: int, repo: str) -> RepositoryLocks | None:
    row = _REPOSITORY_LOCKS.first(conn, registry_id=registry_id, repo=repo)
    return None if row is None else RepositoryLocks(row[0], locks_of(row[1:]))


def _with_tags_and_references(
    conn: Connection, rows: Sequence[Sequence[Any]]
) -> list[ManifestAttributes]:
    """Complete a page of manifest rows: two more queries, whatever the page size."""
    if not rows:
        return []
    ids = [row[0] for row in rows]
    tags: dict[int, list[str]] = {}
    tag_rows = conn.execute(
        select(_m.c.id, _g.c.name)
        .select_from(
            _m.join(_g, and_(_g.c.repository_id == _m.c.repository_id, _g.c.digest == _m.c.digest))
        )
        .where(_m.c.id.in_(ids), _g.c.list_enabled)
        .order_by(_g.c.name)
    )
    for manifest_id, name in tag_rows:
        tags.setdefault(manifest_id, []).append(name)
    parent, child = _m.alias(), _m.alias()
    reference_rows = conn.execute(
        select(_mr.c.manifest_id, _mr.c.digest, child.c.architecture, child.c.os)
        .select_from(
            _mr.join(parent, parent.c.id == _mr.c.manifest_id).outerjoin(
                child,
                and_(
                    child.c.repository_id == parent.c.repository_id,
                    child.c.digest == _mr.c.digest,
                ),
            )
        )
        .where(_mr.c.manifest_id.in_(ids), _mr.c.is_manifest == 1)
        .order_by(_mr.c.digest)
    )
    references: dict[int, list[ChildManifest]] = {}
    for manifest_id, digest, architecture, os in reference_rows:
        references.setdefault(manifest_id, []).append(ChildManifest(digest, architecture, os))
    return [
        ManifestAttributes(
            *row[1:9],
            locks=locks_of(row[9:13]),
            tags=tuple(tags.get(row[0], ())),
            references=tuple(references.get(row[0], ())),
            signed=bool(row[13]),
        )
        for row in rows
    ]


class AttributeWrites:
    """Lock reads and changes inside one `Metadata.transaction()`, so that a check and
    the change it guards commit (or fail) together."""

    def __init__(self, tx: Transaction) -> None:
        self._conn = tx.conn
        self.now = tx.now

    def repository_locks(self, registry_id: int, repo: str) -> RepositoryLocks | None:
        return _repository_locks(self._conn, registry_id, repo)

    def tag_locks(self, repository_id: int, tag: str) -> Locks | None:
        row = self._conn.execute(
            select(*lock_columns(_g)).where(_g.c.repository_id == repository_id, _g.c.name == tag)
        ).first()
        return None if row is None else locks_of(row)

    def content_locks(self, repository_id: int, digest: str | None = None) -> ContentLocks:
        """The manifest `digest` and the tags on it; without a digest, everything in the
        repository."""
        tags = select(_g.c.name, *lock_columns(_g)).where(_g.c.repository_id == repository_id)
        manifests = select(_m.c.digest, *lock_columns(_m)).where(
            _m.c.repository_id == repository_id
        )
        if digest is not None:
            tags = tags.where(_g.c.digest == digest)
            manifests = manifests.where(_m.c.digest == digest)
        return ContentLocks(
            tags={row[0]: locks_of(row[1:]) for row in self._conn.execute(tags)},
            manifests={row[0]: locks_of(row[1:]) for row in self._conn.execute(manifests)},
        )

    def set_locks(
        self,
        repository_id: int,
        changes: Mapping[str, bool],
        *,
        tag: str | None = None,
        digest: str | None = None,
    ) -> bool:
        """Change locks (names from `LOCK_NAMES`) of the repository, or of one of its tags
        or manifests, and record the time; False if that tag or manifest is unknown."""
        if tag is not None:
            table, where = _g, and_(_g.c.repository_id == repository_id, _g.c.name == tag)
        elif digest is not None:
            table, where = _m, and_(_m.c.repository_id == repository_id, _m.c.digest == digest)
        else:
            table, where = _r, _r.c.id == repository_id
        values = {name: bool(changes[name]) for name in LOCK_NAMES if name in changes}
        values["updated_at"] = self.now
        return self._conn.execute(update(table).where(where).values(**values)).rowcount > 0
